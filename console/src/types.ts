// The REST reply shapes the console reads (docs/protocol.md, "Reply shapes").

export interface User {
  id: string;
  username: string;
  displayName: string | null;
  bio: string | null;
  avatarUrl: string | null;
  timeZone: string | null;
  createdAt: string;
  bot?: true;
}

export interface Me extends User {
  isAdmin: boolean;
  email: string | null;
  pendingEmail: string | null;
  dmPolicy: 'anyone' | 'contacts';
}

export type Role = 'owner' | 'moderator' | 'member';

export interface Room {
  id: string;
  kind: 'group' | 'direct';
  name: string | null;
  ownerId: string | null;
  lastSeq: number;
  createdAt: string;
  receipts: boolean;
  role?: Role | null;
  readSeq?: number;
  unread?: number;
  mentions?: number;
  notify?: 'all' | 'mentions' | 'muted';
  /** A direct room's other person, in `scope=mine` listings. */
  peer?: { id: string; username: string } | null;
}

export interface Member {
  userId: string;
  username: string;
  role: Role;
  joinedAt: string;
  readSeq?: number;
}

export interface Page<K extends string, T> {
  nextCursor: string | null;
  items: Record<K, T[]>;
}
