// Versioned schema migrations. They run at start and from `switchboard migrate`, all pending ones in
// one transaction under a transaction-scoped advisory lock, so nodes that start together apply each
// migration exactly once and a failed migration leaves the schema as it was. Append only: never
// edit a migration that has shipped.

import type { Sql } from './db.js';
import { laterMigrations } from './migrations-later.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Arbitrary constant naming Switchboard's migration lock among the database's advisory locks. */
const MIGRATION_LOCK = 0x5b_0001;

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'accounts, rooms and messages',
    sql: `
CREATE TABLE users (
  id            uuid PRIMARY KEY,
  username      text NOT NULL CHECK (char_length(username) BETWEEN 3 AND 32),
  display_name  text CHECK (char_length(display_name) <= 64),
  password_hash text NOT NULL,
  is_admin      boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE refresh_tokens (
  token_hash  bytea PRIMARY KEY,
  family_id   uuid NOT NULL,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE rooms (
  id          uuid PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('group', 'direct')),
  name        text CHECK (char_length(name) BETWEEN 1 AND 100),
  owner_id    uuid REFERENCES users (id) ON DELETE SET NULL,
  direct_key  text UNIQUE,
  last_seq    bigint NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'group' AND name IS NOT NULL AND direct_key IS NULL) OR (kind = 'direct' AND direct_key IS NOT NULL))
);
CREATE INDEX rooms_name_lower ON rooms (lower(name)) WHERE kind = 'group';

CREATE TABLE room_members (
  room_id    uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role       text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
  joined_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members (user_id, room_id);

CREATE TABLE messages (
  room_id        uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  seq            bigint NOT NULL CHECK (seq > 0),
  id             uuid NOT NULL UNIQUE,
  sender_id      uuid REFERENCES users (id) ON DELETE SET NULL,
  client_msg_id  text NOT NULL CHECK (char_length(client_msg_id) BETWEEN 1 AND 64),
  body           text NOT NULL CHECK (octet_length(body) <= 1048576),
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_sender_cid ON messages (sender_id, client_msg_id);
`,
  },
  {
    version: 2,
    name: 'robots, grants, certificates and the command audit log',
    // command_audit is append-only: a row's identity and issue fields never change and each later
    // field (delivered/accepted/completed, outcome) may be filled once. The trigger enforces that for
    // every writer; only user_id may still be cleared, by ON DELETE SET NULL when an account goes.
    // Deleting a robot deletes its history with it (an explicit act by its owner or an admin).
    sql: `
CREATE TABLE robots (
  id            uuid PRIMARY KEY,
  name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
  owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz
);
CREATE UNIQUE INDEX robots_owner_name_lower ON robots (owner_id, lower(name));

CREATE TABLE robot_grants (
  robot_id    uuid NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('viewer', 'operator')),
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (robot_id, user_id)
);
CREATE INDEX robot_grants_user ON robot_grants (user_id, robot_id);

CREATE TABLE robot_certificates (
  fingerprint  bytea PRIMARY KEY CHECK (octet_length(fingerprint) = 32),
  robot_id     uuid NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
  serial       text NOT NULL UNIQUE CHECK (serial ~ '^[0-9a-f]{1,40}$'),
  not_after    timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz
);
CREATE INDEX robot_certificates_robot ON robot_certificates (robot_id, created_at);

CREATE TABLE command_audit (
  id            uuid PRIMARY KEY,
  robot_id      uuid NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
  user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
  command       text NOT NULL CHECK (char_length(command) BETWEEN 1 AND 64),
  args_digest   bytea NOT NULL CHECK (octet_length(args_digest) = 32),
  issued_at     timestamptz NOT NULL,
  delivered_at  timestamptz,
  accepted_at   timestamptz,
  completed_at  timestamptz,
  outcome       text CHECK (char_length(outcome) BETWEEN 1 AND 32)
);
CREATE INDEX command_audit_robot ON command_audit (robot_id, issued_at DESC, id DESC);
CREATE INDEX command_audit_user ON command_audit (user_id) WHERE user_id IS NOT NULL;

CREATE FUNCTION command_audit_fill_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <> OLD.id OR NEW.robot_id <> OLD.robot_id OR NEW.command <> OLD.command
     OR NEW.args_digest <> OLD.args_digest OR NEW.issued_at <> OLD.issued_at
     OR (NEW.user_id IS DISTINCT FROM OLD.user_id AND NEW.user_id IS NOT NULL)
     OR (OLD.delivered_at IS NOT NULL AND NEW.delivered_at IS DISTINCT FROM OLD.delivered_at)
     OR (OLD.accepted_at IS NOT NULL AND NEW.accepted_at IS DISTINCT FROM OLD.accepted_at)
     OR (OLD.completed_at IS NOT NULL AND NEW.completed_at IS DISTINCT FROM OLD.completed_at)
     OR (OLD.outcome IS NOT NULL AND NEW.outcome IS DISTINCT FROM OLD.outcome) THEN
    RAISE EXCEPTION 'command_audit is append-only: row % may only have empty fields filled', OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER command_audit_fill_once BEFORE UPDATE ON command_audit
  FOR EACH ROW EXECUTE FUNCTION command_audit_fill_once();
`,
  },
  {
    version: 3,
    name: 'why a session ended; shared rate-limit counters',
    sql: `
-- 'logout' or 'reuse': a refresh after a logout is not reported as a stolen token.
ALTER TABLE refresh_tokens ADD COLUMN revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse'));

-- rate-limiter-flexible's PostgreSQL layout (its queries name the columns in this order): one row
-- per limited key, points consumed and the window's end in ms since the epoch. Shared by the
-- cluster's nodes and kept across restarts; expired rows are pruned.
CREATE TABLE rate_limits (
  key     varchar(255) PRIMARY KEY,
  points  integer NOT NULL DEFAULT 0,
  expire  bigint
);
CREATE INDEX rate_limits_expire ON rate_limits (expire);
`,
  },
  {
    version: 4,
    name: 'group commits of many rooms in one call',
    sql: `
-- The commit below proves under lock what these foreign keys checked again for every row (about a
-- third of an insert's cost): the room exists, and every sender is a member (so a user). Deleting a
-- room deletes its messages itself (rooms.ts); deleting an account must null its messages' sender.
ALTER TABLE messages DROP CONSTRAINT messages_room_id_fkey, DROP CONSTRAINT messages_sender_id_fkey;

-- Commits sequenced messages of any number of rooms in one call (one round trip, one transaction).
-- The arrays are parallel, one element per message, each room's messages in their order. Per room:
-- a room that no longer exists is 'gone'; a room where a sender is no longer a member is refused
-- with those senders; otherwise its messages take the seqs right after its last_seq (renumbered if
-- another node's sequencer wrote since it numbered them) and out_first_seq says where they start.
-- Rooms are taken in id order, so commits over the same rooms queue instead of deadlocking; each
-- room's row is locked by its UPDATE before its memberships are read FOR KEY SHARE (the order a
-- room's deletion takes them in), so a leave waits for the commit or is seen by it. A (sender, cid)
-- already stored fails the whole call with a unique violation: the caller retries room by room.
-- Every lookup is by a whole primary key and the INSERT reads only the arguments, so no plan here
-- depends on table statistics: a plan cached while the tables were young stays right as they grow.
CREATE FUNCTION sb_commit_messages(
  p_rooms uuid[], p_ids uuid[], p_senders uuid[], p_cids text[], p_bodies text[], p_ats timestamptz[]
) RETURNS TABLE (out_room uuid, out_first_seq bigint, out_gone boolean, out_refused uuid[])
LANGUAGE plpgsql
AS $fn$
DECLARE
  g record;
  v_sender uuid;
  v_last bigint;
  v_refused uuid[];
  v_ok uuid[] := '{}';
  v_base bigint[] := '{}';
BEGIN
  FOR g IN
    SELECT u.r, array_agg(DISTINCT u.s) AS senders, count(*) AS n
    FROM unnest(p_rooms, p_senders) AS u(r, s) GROUP BY u.r ORDER BY u.r
  LOOP
    UPDATE rooms SET last_seq = last_seq + g.n WHERE id = g.r RETURNING last_seq - g.n INTO v_last;
    IF NOT FOUND THEN
      RETURN QUERY SELECT g.r, NULL::bigint, true, NULL::uuid[];
      CONTINUE;
    END IF;
    v_refused := '{}';
    FOREACH v_sender IN ARRAY g.senders LOOP
      PERFORM 1 FROM room_members WHERE room_id = g.r AND user_id = v_sender FOR KEY SHARE;
      IF NOT FOUND THEN
        v_refused := v_refused || v_sender;
      END IF;
    END LOOP;
    IF cardinality(v_refused) > 0 THEN
      UPDATE rooms SET last_seq = last_seq - g.n WHERE id = g.r;
      RETURN QUERY SELECT g.r, NULL::bigint, false, v_refused;
      CONTINUE;
    END IF;
    v_ok := v_ok || g.r;
    v_base := v_base || v_last;
    RETURN QUERY SELECT g.r, v_last + 1, false, NULL::uuid[];
  END LOOP;
  INSERT INTO messages (room_id, seq, id, sender_id, client_msg_id, body, created_at)
    SELECT u.r, o.base + row_number() OVER (PARTITION BY u.r ORDER BY u.n), u.i, u.s, u.c, u.body, u.at
    FROM unnest(p_rooms, p_ids, p_senders, p_cids, p_bodies, p_ats) WITH ORDINALITY AS u(r, i, s, c, body, at, n)
    JOIN unnest(v_ok, v_base) AS o(r, base) ON o.r = u.r;
END
$fn$;
`,
  },
  {
    version: 5,
    name: 'profiles; sessions that can be listed and ended',
    sql: `
ALTER TABLE users
  ADD COLUMN bio        text CHECK (char_length(bio) <= 500),
  ADD COLUMN avatar_url text CHECK (char_length(avatar_url) <= 2048),
  ADD COLUMN time_zone  text CHECK (char_length(time_zone) <= 64);

-- One row per login (a refresh-token family): what the person sees as a signed-in device. An access
-- token names its session (the sid claim) and is refused once the session has ended, so ending a
-- session ends its access tokens too, not only its refresh tokens.
CREATE TABLE sessions (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL,
  user_agent    text CHECK (char_length(user_agent) <= 256),
  ip            text CHECK (char_length(ip) <= 64),
  ended_at      timestamptz,
  ended_reason  text CHECK (ended_reason IN ('logout', 'reuse', 'revoked', 'password', 'expired'))
);
CREATE INDEX sessions_user ON sessions (user_id, created_at DESC);

-- The sessions of the tokens issued before this migration.
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ended_at, ended_reason)
  SELECT family_id, min(user_id::text)::uuid, min(created_at), max(created_at), max(expires_at),
         CASE WHEN bool_or(used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) THEN NULL ELSE now() END,
         CASE WHEN bool_or(used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) THEN NULL ELSE 'expired' END
  FROM refresh_tokens GROUP BY family_id;
-- No foreign key from refresh_tokens.family_id: a node of the previous version, still serving
-- during a rolling upgrade, issues tokens of families that have no row here; the first refresh on
-- an upgraded node adds it (Sessions.refreshed).

-- A refresh token revoked because its session ended carries the session's reason.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_revoked_reason_check;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_revoked_reason_check
  CHECK (revoked_reason IN ('logout', 'reuse', 'revoked', 'password'));
`,
  },
  {
    version: 6,
    name: 'email addresses and one-time codes',
    sql: `
-- email is verified (a code sent to it came back) and unique regardless of case; pending_email
-- waits for its code. Only a verified address logs in.
ALTER TABLE users
  ADD COLUMN email         text CHECK (char_length(email) <= 254),
  ADD COLUMN pending_email text CHECK (char_length(pending_email) <= 254);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- At most one live code per person and purpose (a new one replaces it); a code used or tried too
-- often is deleted. Only a keyed hash of the code is kept.
CREATE TABLE email_codes (
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose    text NOT NULL CHECK (purpose IN ('verify', 'login')),
  email      text NOT NULL CHECK (char_length(email) <= 254),
  code_hash  bytea NOT NULL CHECK (octet_length(code_hash) = 32),
  expires_at timestamptz NOT NULL,
  attempts   integer NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, purpose)
);
CREATE INDEX email_codes_expires ON email_codes (expires_at);
`,
  },
  {
    version: 7,
    name: 'finding people by the words of their names',
    sql: `
-- Every word of a person's username and display name (sb_name_words), lower-cased, in
-- the C collation so a prefix (word LIKE 'ad%') is a range of the primary key. Kept by a trigger,
-- so every writer of users keeps it right.
CREATE TABLE user_name_words (
  word    text COLLATE "C" NOT NULL CHECK (char_length(word) BETWEEN 1 AND 64),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (word, user_id)
);
CREATE INDEX user_name_words_user ON user_name_words (user_id);

-- The words of a name: split at white space, and again at anything but letters and digits, so
-- "Jean-Luc (Ada)" is found by "jean-luc", "jean", "luc" and "ada". Queries lower-case their words
-- with the same lower(), whatever the server's locale does to non-ASCII letters.
CREATE FUNCTION sb_name_words(p_username text, p_display text) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $fn$
  SELECT DISTINCT w FROM (
    SELECT regexp_split_to_table(lower(p_username || ' ' || coalesce(p_display, '')), '[[:space:]]+') AS w
    UNION ALL
    SELECT regexp_split_to_table(lower(p_username || ' ' || coalesce(p_display, '')), '[^[:alnum:]]+')
  ) AS words WHERE w <> ''
$fn$;

CREATE FUNCTION sb_user_name_words() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM user_name_words WHERE user_id = NEW.id;
  INSERT INTO user_name_words (word, user_id)
    SELECT DISTINCT left(w, 64), NEW.id FROM sb_name_words(NEW.username, NEW.display_name) AS w;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER users_name_words AFTER INSERT OR UPDATE OF username, display_name ON users
  FOR EACH ROW EXECUTE FUNCTION sb_user_name_words();

INSERT INTO user_name_words (word, user_id)
  SELECT DISTINCT left(w, 64), u.id FROM users u, sb_name_words(u.username, u.display_name) AS w;
`,
  },
  {
    version: 8,
    name: 'contacts, blocks and who may open a direct room',
    sql: `
ALTER TABLE users ADD COLUMN dm_policy text NOT NULL DEFAULT 'anyone' CHECK (dm_policy IN ('anyone', 'contacts'));

-- A request from user_id to peer_id is one 'requested' row; once accepted, each side has an
-- 'accepted' row (so "my contacts" is one index range).
CREATE TABLE contacts (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  peer_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  state   text NOT NULL CHECK (state IN ('requested', 'accepted')),
  since   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, peer_id),
  CHECK (user_id <> peer_id)
);
CREATE INDEX contacts_peer ON contacts (peer_id, state);

CREATE TABLE blocks (
  blocker_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  blocked_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  since      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (blocker_id, blocked_id),
  CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);
`,
  },
  {
    version: 9,
    name: 'room roles, bans, timeline events, deleted messages, disabled accounts',
    sql: `
ALTER TABLE room_members DROP CONSTRAINT room_members_role_check;
ALTER TABLE room_members ADD CONSTRAINT room_members_role_check CHECK (role IN ('owner', 'moderator', 'member'));

-- A banned person cannot join the room again until unbanned.
CREATE TABLE room_bans (
  room_id   uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
  user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  banned_by uuid REFERENCES users (id) ON DELETE SET NULL,
  since     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, user_id)
);

-- A room's log holds its timeline events beside its messages, in the same seq order: an event's
-- kind names it and its body is the event's JSON. A deleted message keeps its row (seq, sender,
-- time) with an empty body: the tombstone history shows. sb_commit_messages writes 'message' rows.
ALTER TABLE messages
  ADD COLUMN kind text NOT NULL DEFAULT 'message' CHECK (kind IN (
    'message', 'member_joined', 'member_left', 'member_removed', 'member_banned', 'role_changed', 'room_renamed', 'message_deleted')),
  ADD COLUMN deleted_at timestamptz;

-- A disabled account cannot log in; its sessions ended when it was disabled.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE sessions DROP CONSTRAINT sessions_ended_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_ended_reason_check
  CHECK (ended_reason IN ('logout', 'reuse', 'revoked', 'password', 'expired', 'disabled'));
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_revoked_reason_check;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_revoked_reason_check
  CHECK (revoked_reason IN ('logout', 'reuse', 'revoked', 'password', 'disabled'));
`,
  },
  {
    version: 10,
    name: 'edited messages and reactions',
    sql: `
ALTER TABLE messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_kind_check CHECK (kind IN (
  'message', 'member_joined', 'member_left', 'member_removed', 'member_banned', 'role_changed', 'room_renamed', 'message_deleted',
  'message_edited', 'reaction_added', 'reaction_removed'));
-- An edited message holds its current text; each edit is also a message_edited event carrying it,
-- found by its target (to empty it when the message is deleted).
ALTER TABLE messages ADD COLUMN edited_at timestamptz;
CREATE INDEX messages_edits ON messages (room_id, ((body::jsonb ->> 'target')::bigint)) WHERE kind = 'message_edited';

-- Who reacted to which message with what; a message's reactions go with it.
CREATE TABLE message_reactions (
  room_id  uuid NOT NULL,
  seq      bigint NOT NULL,
  user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  emoji    text NOT NULL CHECK (char_length(emoji) BETWEEN 1 AND 32),
  at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (room_id, seq, emoji, user_id),
  FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
CREATE INDEX message_reactions_user ON message_reactions (user_id);
`,
  },
  {
    version: 11,
    name: 'read markers, unread and mention counts',
    // Counting unread messages never counts history: a room counts its posted messages
    // (msg_count), each message keeps its number among them (msg_no), and a member's marker keeps
    // the number it reached (read_no), so unread = msg_count - read_no. Mentions are few: each is a
    // row, counted past the marker. The commit below (sb_commit_messages, same signature, so a node
    // of the previous version calls it unchanged) keeps all of it, in the same statement as the
    // insert: the counts, the numbers, the sender's marker (you have read what you post) and the
    // mentions (@username of a member).
    sql: `
ALTER TABLE rooms
  ADD COLUMN msg_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN receipts boolean NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN msg_no bigint;
ALTER TABLE room_members
  ADD COLUMN read_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN read_no bigint NOT NULL DEFAULT 0;

UPDATE messages m SET msg_no = n.no
  FROM (SELECT room_id, seq, row_number() OVER (PARTITION BY room_id ORDER BY seq) AS no FROM messages WHERE kind = 'message') n
  WHERE m.room_id = n.room_id AND m.seq = n.seq;
UPDATE rooms r SET msg_count = coalesce((SELECT max(msg_no) FROM messages WHERE room_id = r.id), 0);
-- Members before this version have read everything: no room lights up at once.
UPDATE room_members m SET read_seq = r.last_seq, read_no = r.msg_count FROM rooms r WHERE r.id = m.room_id;

CREATE TABLE mentions (
  room_id uuid NOT NULL,
  seq     bigint NOT NULL,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (user_id, room_id, seq),
  FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
-- For the cascade: deleting a room's messages finds their mentions by message.
CREATE INDEX mentions_message ON mentions (room_id, seq);

CREATE OR REPLACE FUNCTION sb_commit_messages(
  p_rooms uuid[], p_ids uuid[], p_senders uuid[], p_cids text[], p_bodies text[], p_ats timestamptz[]
) RETURNS TABLE (out_room uuid, out_first_seq bigint, out_gone boolean, out_refused uuid[])
LANGUAGE plpgsql
AS $fn$
DECLARE
  g record;
  v_sender uuid;
  v_last bigint;
  v_count bigint;
  v_refused uuid[];
  v_ok uuid[] := '{}';
  v_base bigint[] := '{}';
  v_nbase bigint[] := '{}';
BEGIN
  FOR g IN
    SELECT u.r, array_agg(DISTINCT u.s) AS senders, count(*) AS n
    FROM unnest(p_rooms, p_senders) AS u(r, s) GROUP BY u.r ORDER BY u.r
  LOOP
    UPDATE rooms SET last_seq = last_seq + g.n, msg_count = msg_count + g.n WHERE id = g.r
      RETURNING last_seq - g.n, msg_count - g.n INTO v_last, v_count;
    IF NOT FOUND THEN
      RETURN QUERY SELECT g.r, NULL::bigint, true, NULL::uuid[];
      CONTINUE;
    END IF;
    v_refused := '{}';
    FOREACH v_sender IN ARRAY g.senders LOOP
      PERFORM 1 FROM room_members WHERE room_id = g.r AND user_id = v_sender FOR KEY SHARE;
      IF NOT FOUND THEN
        v_refused := v_refused || v_sender;
      END IF;
    END LOOP;
    IF cardinality(v_refused) > 0 THEN
      UPDATE rooms SET last_seq = last_seq - g.n, msg_count = msg_count - g.n WHERE id = g.r;
      RETURN QUERY SELECT g.r, NULL::bigint, false, v_refused;
      CONTINUE;
    END IF;
    v_ok := v_ok || g.r;
    v_base := v_base || v_last;
    v_nbase := v_nbase || v_count;
    RETURN QUERY SELECT g.r, v_last + 1, false, NULL::uuid[];
  END LOOP;
  WITH ins AS (
    INSERT INTO messages (room_id, seq, id, sender_id, client_msg_id, body, created_at, msg_no)
      SELECT u.r, o.base + u.k, u.i, u.s, u.c, u.body, u.at, o.nbase + u.k
      FROM (
        SELECT x.*, row_number() OVER (PARTITION BY x.r ORDER BY x.n) AS k
        FROM unnest(p_rooms, p_ids, p_senders, p_cids, p_bodies, p_ats) WITH ORDINALITY AS x(r, i, s, c, body, at, n)
      ) u
      JOIN unnest(v_ok, v_base, v_nbase) AS o(r, base, nbase) ON o.r = u.r
    RETURNING room_id, seq, sender_id, msg_no, body
  ), marks AS (
    UPDATE room_members m SET read_seq = x.seq, read_no = x.no
      FROM (SELECT room_id, sender_id, max(seq) AS seq, max(msg_no) AS no FROM ins GROUP BY room_id, sender_id) x
      WHERE m.room_id = x.room_id AND m.user_id = x.sender_id AND m.read_seq < x.seq
  )
  INSERT INTO mentions (room_id, seq, user_id)
    SELECT DISTINCT ins.room_id, ins.seq, mem.user_id
    FROM ins
    -- At most 20 different names a message, each a whole run of username characters.
    CROSS JOIN LATERAL (
      SELECT DISTINCT lower(m[1]) AS name
      FROM regexp_matches(ins.body, '(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9][A-Za-z0-9_.-]{2,31})(?![A-Za-z0-9_.-])', 'g') AS m
      LIMIT 20
    ) AS mt
    -- A name may end with . or -, and so may a sentence ("thanks @ada."): either reading counts.
    JOIN users u ON lower(u.username) IN (mt.name, rtrim(mt.name, '.-'))
    JOIN room_members mem ON mem.room_id = ins.room_id AND mem.user_id = u.id
    WHERE ins.body LIKE '%@%' AND u.id <> ins.sender_id;
END
$fn$;
`,
  },
  {
    version: 12,
    name: "each person's notices, and per-room notification levels",
    // A person's own stream: what concerns them besides the rooms' messages (rooms they were added
    // to or removed from, role changes, contact news, their read markers and notification levels
    // moving on another device), numbered 1, 2, 3... per person so a device resumes after the last
    // one it has. notice_heads holds each person's last number; appending locks that row, so two
    // notices for one person never take the same number. Messages are not copied here (that would
    // write a row per member per message): they reach a person's sockets live, and a resume brings
    // the unread counts instead.
    sql: `
CREATE TABLE notice_heads (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  n       bigint NOT NULL
);
CREATE TABLE notices (
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  n          bigint NOT NULL,
  frame      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, n)
);
CREATE INDEX notices_created ON notices (created_at);
ALTER TABLE room_members ADD COLUMN notify text NOT NULL DEFAULT 'all' CHECK (notify IN ('all', 'mentions', 'muted'));
`,
  },
  ...laterMigrations,
];

export const latestVersion = Math.max(...migrations.map((m) => m.version));

/** Apply every pending migration; returns the versions applied by this call. */
export async function migrate(sql: Sql): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const rows = await tx<{ version: number }[]>`SELECT version FROM schema_migrations`;
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    return applied;
  });
}

/** The highest applied version, or 0 on an empty database. */
export async function appliedVersion(sql: Sql): Promise<number> {
  const [t] = await sql<{ exists: boolean }[]>`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`;
  if (!t?.exists) return 0;
  const [row] = await sql<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_migrations`;
  return row?.v ?? 0;
}
