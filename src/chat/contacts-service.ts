// Contacts and blocks: friend requests (send, accept, decline, cancel), contacts (list, remove),
// blocks, and the rules they make for direct rooms. Every change is told to the sockets of both
// people it concerns, on every node (`PeopleGateway.tell`), except that nobody is told they were
// blocked: the blocked person sees only a contact or a request of theirs end.

import { notFound, SbError } from '../errors.js';
import type { ContactChange, ServerFrame, UserRef } from '../protocol/frames.js';
import type { ContactEntry, ContactList } from '../store/contacts.js';
import type { Store } from '../store/store.js';
import type { User } from '../store/users.js';

export interface PeopleGateway {
  /** Sends a frame to every socket of the user, on every node. */
  tell(userId: string, frame: ServerFrame): void;
  /** A direct room's members blocked or unblocked each other: its posts are refused or allowed again. */
  directBlocked(roomId: string, blocked: boolean): void;
}

const ref = (u: User): UserRef => ({ id: u.id, username: u.username });
const blockedError = () => new SbError('FORBIDDEN', 'you cannot contact this person');

export class ContactsService {
  constructor(
    private readonly store: Store,
    private readonly gateway: PeopleGateway,
    /** Takes one of the sender's daily contact requests (RATE_LIMITED when none is left). */
    private readonly takeRequest: (userId: string) => Promise<void>,
  ) {}

  /** Asks `toId` to be a contact; when they had asked first, both are contacts at once. */
  async request(me: UserRef, toId: string): Promise<'requested' | 'accepted'> {
    const to = await this.other(me, toId);
    await this.takeRequest(me.id);
    const outcome = await this.store.contacts.request(me.id, to.id);
    switch (outcome) {
      case 'blocked':
        throw blockedError();
      case 'already-contacts':
        throw new SbError('CONFLICT', 'you are already contacts');
      case 'already-requested':
        throw new SbError('CONFLICT', 'you have already asked; wait for an answer, or cancel it');
      case 'requested':
        this.both(me, 'request_sent', ref(to), 'requested');
        return 'requested';
      case 'accepted':
        this.both(me, 'accepted', ref(to), 'accepted');
        return 'accepted';
    }
  }

  async accept(me: UserRef, fromId: string): Promise<void> {
    const from = await this.other(me, fromId);
    if (!(await this.store.contacts.accept(me.id, from.id))) throw notFound('request');
    this.both(me, 'accepted', ref(from), 'accepted');
  }

  /** Cancels my request to `otherId`, or declines theirs to me. */
  async dropRequest(me: UserRef, otherId: string): Promise<void> {
    const other = await this.other(me, otherId);
    const dropped = await this.store.contacts.dropRequest(me.id, other.id);
    if (!dropped) throw notFound('request');
    this.both(me, dropped, ref(other), dropped);
  }

  async remove(me: UserRef, otherId: string): Promise<void> {
    const other = await this.other(me, otherId);
    if (!(await this.store.contacts.remove(me.id, other.id))) throw notFound('contact');
    this.both(me, 'removed', ref(other), 'removed');
  }

  async block(me: UserRef, otherId: string): Promise<void> {
    const other = await this.other(me, otherId);
    const { added, ended } = await this.store.contacts.block(me.id, other.id);
    if (!added) return;
    this.gateway.tell(me.id, { t: 'contact', kind: 'blocked', user: ref(other) });
    // The blocked person is not told of the block, only of what it ended for them.
    if (ended === 'contact') this.gateway.tell(other.id, { t: 'contact', kind: 'removed', user: me });
    if (ended === 'request') this.gateway.tell(other.id, { t: 'contact', kind: 'declined', user: me });
    await this.directChanged(me.id, other.id);
  }

  async unblock(me: UserRef, otherId: string): Promise<void> {
    const other = await this.other(me, otherId);
    if (!(await this.store.contacts.unblock(me.id, other.id))) throw notFound('block');
    this.gateway.tell(me.id, { t: 'contact', kind: 'unblocked', user: ref(other) });
    await this.directChanged(me.id, other.id);
  }

  list(me: string, which: ContactList, limit: number, after: string | undefined): Promise<ContactEntry[]> {
    return this.store.contacts.list(me, which, limit, after);
  }

  /**
   * Whether `me` may open (or reopen) a direct room with `peer`: not if either blocked the other,
   * nor, for a new one, if the peer takes direct messages from contacts only and `me` is not one.
   */
  async assertMayMessage(me: string, peer: User): Promise<void> {
    if (await this.store.contacts.blockedEitherWay(me, peer.id)) throw blockedError();
    if (peer.dmPolicy !== 'contacts' || (await this.store.contacts.directRoom(me, peer.id))) return;
    if (!(await this.store.contacts.areContacts(me, peer.id)))
      throw new SbError('FORBIDDEN', 'this person takes direct messages from contacts only: send a contact request');
  }

  /** The other person of a request: an existing account that is not the caller (404 otherwise). */
  private async other(me: UserRef, id: string): Promise<User> {
    if (id === me.id) throw new SbError('VALIDATION', 'userId: must be someone else', { field: 'userId' });
    const u = await this.store.users.byId(id);
    if (!u) throw notFound('user');
    return u;
  }

  /** Tells me (`mine`, about them) and them (`theirs`, about me). */
  private both(me: UserRef, mine: ContactChange, them: UserRef, theirs: ContactChange): void {
    this.gateway.tell(me.id, { t: 'contact', kind: mine, user: them });
    this.gateway.tell(them.id, { t: 'contact', kind: theirs, user: me });
  }

  private async directChanged(a: string, b: string): Promise<void> {
    const room = await this.store.contacts.directRoom(a, b);
    if (room) this.gateway.directBlocked(room, await this.store.contacts.directRoomBlocked(room));
  }
}
