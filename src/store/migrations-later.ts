// Migrations from version 13 on (migrations.ts holds 1 to 12 and reached the size limit of a
// source file). The same rules: append only, never edit one that has shipped.

import type { Migration } from './migrations.js';

export const laterMigrations: Migration[] = [
  {
    version: 13,
    name: 'attachments: blobs in chunks, the messages that reference them; the webhooks outbox',
    // A blob's bytes are rows of blob_chunks (CHUNK_BYTES each but the last), so neither an upload
    // nor a download ever holds a whole file, and every node of a cluster reads what any wrote. A
    // blob is `ready` once its last chunk is stored: an upload cut short leaves a row that is not,
    // deleted at once, or by the hourly sweep after a crash. A message lists its attachments
    // (messages.attachments, JSON) and each reference is a row of attachment_refs, which goes with
    // its message (a deletion, or the room's); the statement that deletes a blob's last reference
    // deletes the blob, after waiting for any commit that is adding one (both lock the blob row,
    // after the room's row, so they neither race nor deadlock). sb_commit_messages takes the attachments as a seventh array; the six-array
    // form stays for nodes of the previous version during a rolling upgrade.
    //
    // Webhooks: each event an endpoint subscribes to is a row of webhook_outbox, written in the
    // transaction of the change it reports (a message's commit, a timeline event, a registration),
    // so none is lost and none is made up. Rows of one endpoint with the same `ordering` (a room, a
    // robot) are delivered one at a time in id order, which follows the room's seqs (its commits
    // hold the room's row lock when they take their ids).
    sql: `
CREATE TABLE webhooks (
  id              uuid PRIMARY KEY,
  url             text NOT NULL CHECK (char_length(url) <= 2048),
  secret          text NOT NULL,
  events          text[] NOT NULL,
  created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  disabled_at     timestamptz,
  disabled_reason text
);
CREATE TABLE webhook_outbox (
  id           bigserial PRIMARY KEY,
  webhook_id   uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id     uuid NOT NULL,
  event_type   text NOT NULL,
  ordering     text NOT NULL,
  payload      text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  attempts     int NOT NULL DEFAULT 0,
  next_at      timestamptz NOT NULL DEFAULT now(),
  lease_until  timestamptz,
  delivered_at timestamptz,
  failed_at    timestamptz,
  last_status  int,
  last_error   text,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (webhook_id, ordering, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_outbox_done ON webhook_outbox (created_at) WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL;
CREATE FUNCTION sb_webhook_event(p_type text, p_event uuid, p_ordering text, p_data text) RETURNS void
LANGUAGE sql
AS $fn$
  INSERT INTO webhook_outbox (webhook_id, event_id, event_type, ordering, payload)
  SELECT id, p_event, p_type, p_ordering,
         json_build_object('id', p_event, 'type', p_type, 'createdAt', now(), 'data', p_data::json)::text
  FROM webhooks WHERE disabled_at IS NULL AND p_type = ANY(events)
  ON CONFLICT (webhook_id, event_id) DO NOTHING
$fn$;

CREATE TABLE blobs (
  id           uuid PRIMARY KEY,
  owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind         text NOT NULL CHECK (kind IN ('attachment', 'avatar')),
  name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
  content_type text NOT NULL CHECK (char_length(content_type) <= 127),
  size         bigint NOT NULL CHECK (size >= 0),
  width        int,
  height       int,
  ready        boolean NOT NULL DEFAULT false,
  used         boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blobs_owner ON blobs (owner_id);
CREATE INDEX blobs_unready ON blobs (created_at) WHERE NOT ready;
CREATE TABLE blob_chunks (
  blob_id uuid NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
  n       int NOT NULL,
  data    bytea NOT NULL,
  PRIMARY KEY (blob_id, n)
);
CREATE TABLE attachment_refs (
  blob_id uuid NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
  room_id uuid NOT NULL,
  seq     bigint NOT NULL,
  PRIMARY KEY (blob_id, room_id, seq),
  FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
CREATE INDEX attachment_refs_message ON attachment_refs (room_id, seq);
ALTER TABLE messages ADD COLUMN attachments text;

-- A commit adding a reference holds its blob FOR KEY SHARE: the lock here waits for it, and the
-- DELETE, a later statement, reads the references afresh (READ COMMITTED), the new one included.
CREATE FUNCTION sb_drop_unreferenced_blobs() RETURNS trigger
LANGUAGE plpgsql
AS $fn$
BEGIN
  PERFORM 1 FROM blobs WHERE id IN (SELECT blob_id FROM gone) AND kind = 'attachment' ORDER BY id FOR UPDATE;
  DELETE FROM blobs b
  WHERE b.id IN (SELECT DISTINCT blob_id FROM gone) AND b.kind = 'attachment'
    AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.blob_id = b.id);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER attachment_refs_last AFTER DELETE ON attachment_refs
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION sb_drop_unreferenced_blobs();

CREATE FUNCTION sb_commit_messages(
  p_rooms uuid[], p_ids uuid[], p_senders uuid[], p_cids text[], p_bodies text[], p_ats timestamptz[], p_atts text[]
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
  -- After the rooms' locks, as a message's deletion takes them (no deadlock between the two).
  -- The files posted stay until this commits (a deletion of their last other reference waits);
  -- one deleted just before is left out of the references (the message keeps its description).
  PERFORM 1 FROM blobs
    WHERE id IN (SELECT (a ->> 'id')::uuid FROM unnest(p_atts) AS t(att) CROSS JOIN LATERAL jsonb_array_elements(t.att::jsonb) AS a
                 WHERE t.att IS NOT NULL)
    ORDER BY id FOR KEY SHARE;
  WITH ins AS (
    INSERT INTO messages (room_id, seq, id, sender_id, client_msg_id, body, created_at, msg_no, attachments)
      SELECT u.r, o.base + u.k, u.i, u.s, u.c, u.body, u.at, o.nbase + u.k, u.att
      FROM (
        SELECT x.*, row_number() OVER (PARTITION BY x.r ORDER BY x.n) AS k
        FROM unnest(p_rooms, p_ids, p_senders, p_cids, p_bodies, p_ats, p_atts) WITH ORDINALITY AS x(r, i, s, c, body, at, att, n)
      ) u
      JOIN unnest(v_ok, v_base, v_nbase) AS o(r, base, nbase) ON o.r = u.r
    RETURNING id, room_id, seq, sender_id, client_msg_id, msg_no, body, attachments, created_at
  ), hooks AS (
    INSERT INTO webhook_outbox (webhook_id, event_id, event_type, ordering, payload)
      SELECT w.id, ins.id, 'message.created', ins.room_id::text,
             json_build_object('id', ins.id, 'type', 'message.created', 'createdAt', now(), 'data', json_build_object(
               'roomId', ins.room_id, 'seq', ins.seq, 'id', ins.id, 'senderId', ins.sender_id, 'cid', ins.client_msg_id,
               'body', ins.body, 'attachments', ins.attachments::json, 'createdAt', ins.created_at))::text
      FROM ins JOIN webhooks w ON w.disabled_at IS NULL AND 'message.created' = ANY(w.events)
      ORDER BY ins.room_id, ins.seq, w.id
    ON CONFLICT (webhook_id, event_id) DO NOTHING
  ), marks AS (
    UPDATE room_members m SET read_seq = x.seq, read_no = x.no
      FROM (SELECT room_id, sender_id, max(seq) AS seq, max(msg_no) AS no FROM ins GROUP BY room_id, sender_id) x
      WHERE m.room_id = x.room_id AND m.user_id = x.sender_id AND m.read_seq < x.seq
  ), refs AS (
    INSERT INTO attachment_refs (blob_id, room_id, seq)
      SELECT DISTINCT b.id, ins.room_id, ins.seq
      FROM ins CROSS JOIN LATERAL jsonb_array_elements(ins.attachments::jsonb) AS a
      JOIN blobs b ON b.id = (a ->> 'id')::uuid
      WHERE ins.attachments IS NOT NULL
    RETURNING blob_id
  ), used AS (
    UPDATE blobs SET used = true WHERE id IN (SELECT blob_id FROM refs) AND NOT used
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
    version: 14,
    name: 'server API keys, and bots',
    // A backend's API key is stored as the SHA-256 of its secret (a random 256-bit string, so a
    // fast hash is enough: nothing to guess), with the scopes it grants; revoking sets revoked_at.
    // Bots are accounts that post through the server API: `bot` accounts cannot log in; a named
    // bot is its key's (a revoked key's bots keep their messages and post no more).
    sql: `
CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
  secret_hash  bytea NOT NULL UNIQUE,
  prefix       text NOT NULL,
  scopes       text[] NOT NULL,
  created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
ALTER TABLE users ADD COLUMN bot boolean NOT NULL DEFAULT false;
-- A named bot belongs to the key that made it (only it posts as the bot); the system's to none.
ALTER TABLE users ADD COLUMN bot_key uuid REFERENCES api_keys (id) ON DELETE SET NULL;
CREATE INDEX users_bot_key ON users (bot_key) WHERE bot_key IS NOT NULL;
`,
  },
  {
    version: 15,
    name: 'robot enrollment: fleet bootstrap tokens; renewals over the robot link',
    // A bootstrap token lets robots enroll themselves as robots of its owner: like an API key only
    // the SHA-256 of its secret is stored; each enrollment takes one of its uses with a single
    // UPDATE ... WHERE uses_left > 0, so racing robots never take more than it has. A robot records
    // the token that enrolled it. A certificate a robot got by RENEW names the one it renewed
    // (`renews`); the first time the new one authenticates (`first_used_at`) the renewed one is
    // revoked, so a robot that lost the answer keeps working with its old certificate meanwhile.
    sql: `
CREATE TABLE robot_bootstrap_tokens (
  id           uuid PRIMARY KEY,
  owner_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text CHECK (name IS NULL OR char_length(name) BETWEEN 1 AND 64),
  secret_hash  bytea NOT NULL UNIQUE,
  prefix       text NOT NULL,
  uses         int NOT NULL CHECK (uses BETWEEN 1 AND 1000),
  uses_left    int NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses),
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX robot_bootstrap_tokens_owner ON robot_bootstrap_tokens (owner_id, created_at DESC);
ALTER TABLE robots ADD COLUMN bootstrap_token uuid REFERENCES robot_bootstrap_tokens (id) ON DELETE SET NULL;
CREATE INDEX robots_bootstrap_token ON robots (bootstrap_token) WHERE bootstrap_token IS NOT NULL;
ALTER TABLE robot_certificates ADD COLUMN renews bytea;
ALTER TABLE robot_certificates ADD COLUMN first_used_at timestamptz;
`,
  },
  {
    version: 16,
    name: "robots' reliable telemetry history",
    // The samples of robots' reliable channels that carried a seq (the robot's per-channel number),
    // by channel name (ids may be reused for another channel). The key makes a replayed sample a
    // no-op. Kept for SB_ROBOT_HISTORY_MS and at most SB_ROBOT_HISTORY_MAX_SAMPLES per channel.
    sql: `
CREATE TABLE robot_telemetry (
  robot_id  uuid NOT NULL REFERENCES robots (id) ON DELETE CASCADE,
  channel   text NOT NULL,
  seq       bigint NOT NULL CHECK (seq >= 0),
  ts        bigint NOT NULL,
  data      bytea NOT NULL,
  stored_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (robot_id, channel, seq)
);
CREATE INDEX robot_telemetry_stored_at ON robot_telemetry (robot_id, stored_at);
`,
  },
];
