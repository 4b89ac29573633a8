// One room on screen: its log (older pages load as you scroll up; the view stays put while lines
// are added above or below), who is here and who is typing, and the composer. New messages are
// marked read while the page is visible and scrolled to the end.

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { SwitchboardClient } from '../../../src/client/index.js';
import { api } from '../api.js';
import type { Me } from '../types.js';
import { Composer } from './Composer.js';
import { LineView } from './LineView.js';
import { Members } from './Members.js';
import { forgetRoom, rooms, roomTitle } from './rooms.js';
import { Timeline } from './timeline.js';

/** Within this many pixels of the end counts as "at the end" (follows new lines). */
const AT_END_PX = 48;
/** Nearer than this to the top loads the previous page. */
const OLDER_PX = 300;

export function RoomPane({ id, client, me }: { id: string; client: SwitchboardClient; me: Me }) {
  const log = useRef<HTMLDivElement>(null);
  const atEnd = useRef(true);
  const [unseen, setUnseen] = useState(0);
  const [people, setPeople] = useState(false);
  const timeline = useMemo(() => new Timeline(client, id, me.id, () => document.visibilityState === 'visible' && atEnd.current), [client, id, me.id]);
  const room = rooms.value.find((r) => r.id === id);

  const direct = room?.kind === 'direct';
  useEffect(() => {
    if (direct) void timeline.loadReceipts().catch(() => {});
  }, [timeline, direct]);

  useEffect(() => {
    void timeline.open();
    const visible = () => timeline.markRead();
    document.addEventListener('visibilitychange', visible);
    return () => {
      document.removeEventListener('visibilitychange', visible);
      timeline.close();
    };
  }, [timeline]);

  const lines = timeline.lines.value;
  const prev = useRef({ first: undefined as string | undefined, count: 0, height: 0 });
  // Before the browser paints: keep the view where it was when lines came in above, and follow
  // the end when the reader was there.
  useLayoutEffect(() => {
    const el = log.current;
    if (!el) return;
    const p = prev.current;
    const first = lines[0]?.key;
    if (p.first !== undefined && first !== p.first && lines.length > p.count) el.scrollTop += el.scrollHeight - p.height;
    else if (atEnd.current) el.scrollTop = el.scrollHeight;
    else if (lines.length > p.count) setUnseen((n) => n + lines.slice(p.count).filter((l) => !l.event && l.from !== me.id).length);
    prev.current = { first, count: lines.length, height: el.scrollHeight };
    // A page of mostly edits and reactions may not fill the view: with no scrollbar there is no
    // scrolling up, so read further back at once.
    if (el.scrollHeight <= el.clientHeight && timeline.hasOlder.value) void timeline.older();
  }, [lines]);

  function onScroll() {
    const el = log.current;
    if (!el) return;
    atEnd.current = el.scrollHeight - el.scrollTop - el.clientHeight < AT_END_PX;
    if (atEnd.current) {
      setUnseen(0);
      timeline.markRead();
    }
    if (el.scrollTop < OLDER_PX && timeline.hasOlder.value) void timeline.older();
    prev.current.height = el.scrollHeight;
  }

  function toEnd() {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }

  async function leave() {
    if (!room) return;
    const own = room.role === 'owner';
    if (!confirm(own ? `Delete ${roomTitle(room)} and its history for everyone?` : `Leave ${roomTitle(room)}?`)) return;
    try {
      await api(own ? 'DELETE' : 'POST', own ? `/rooms/${id}` : `/rooms/${id}/leave`);
      forgetRoom(id);
      location.hash = '#/';
    } catch (e) {
      alert((e as Error).message);
    }
  }

  const peerRead = timeline.peerRead.value;
  // "Seen" goes under the last of my messages the other person has read.
  const seenKey = direct ? lines.findLast((l) => l.from === me.id && l.seq !== undefined && l.seq <= peerRead)?.key : undefined;
  const present = timeline.present.value;
  const typing = timeline.typing.value;
  const title = room ? roomTitle(room) : '…';
  const peerHere = room?.kind === 'direct' && room.peer && present.some((u) => u.id === room.peer?.id);
  return (
    <section class="room" aria-label={title}>
      <header class="room-head">
        <a href="#/" class="back" aria-label="Back to rooms">
          ‹
        </a>
        <h2>
          {room?.kind === 'direct' ? '@' : '#'} {title}
        </h2>
        <span class="presence" title={present.map((u) => u.username).join(', ')}>
          {room?.kind === 'direct' ? (
            <>
              <span class={peerHere ? 'dot on' : 'dot'} aria-hidden="true" /> {peerHere ? 'online' : 'offline'}
            </>
          ) : (
            `${present.length} here`
          )}
        </span>
        <span class="spacer" />
        <button type="button" aria-pressed={people} onClick={() => setPeople((x) => !x)}>
          People
        </button>
        {room && room.kind === 'group' && (
          <button type="button" onClick={leave}>
            {room.role === 'owner' ? 'Delete room' : 'Leave'}
          </button>
        )}
      </header>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take focus, so the keyboard can scroll it */}
      <div class="log" ref={log} onScroll={onScroll} role="log" aria-label="Messages" tabIndex={0}>
        {timeline.hasOlder.value && (
          <p class="center">
            <button type="button" class="link" onClick={() => void timeline.older()}>
              Older messages
            </button>
          </p>
        )}
        {!timeline.loading.value && !timeline.hasOlder.value && (
          <p class="muted center">{direct ? `This is the start of your conversation with ${title}.` : `This is the start of ${title}.`}</p>
        )}
        {lines.map((l, i) => (
          <LineView key={l.key} line={l} prev={lines[i - 1]} me={me} room={id} role={room?.role ?? null} timeline={timeline} seen={l.key === seenKey} />
        ))}
        {timeline.error.value && (
          <p class="error" role="alert">
            {timeline.error.value}
          </p>
        )}
      </div>
      {unseen > 0 && (
        <button type="button" class="unseen" onClick={toEnd}>
          {unseen} new ↓
        </button>
      )}
      <p class="typing" aria-live="polite">
        {typing.length === 0 ? '' : `${typing.map((u) => u.username).join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…`}
      </p>
      <Composer timeline={timeline} />
      {people && room && <Members key={timeline.memberChanges.value} room={room} me={me} present={present} onClose={() => setPeople(false)} />}
    </section>
  );
}
