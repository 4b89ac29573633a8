// Writing a message: Enter sends, Shift+Enter breaks the line. Files come from the button, a paste
// or a drop on the room; pictures show as previews until sent. Files are uploaded when the
// message is sent, then posted with it.

import { useEffect, useRef, useState } from 'preact/hooks';
import type { Attachment } from '../../../src/protocol/frames.js';
import { api } from '../api.js';
import { hello } from '../session.js';
import { Alert } from '../ui.js';
import { size } from './LineView.js';
import type { Timeline } from './timeline.js';

/** At most this many files per message (the hub's limit). */
const MAX_FILES = 10;

interface Picked {
  file: File;
  preview: string | undefined;
}

export function Composer({ timeline }: { timeline: Timeline }) {
  const [files, setFiles] = useState<Picked[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const text = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  const maxBytes = hello.value?.limits.maxMessageBytes ?? 16384;

  function add(list: FileList | File[] | null | undefined) {
    const more = [...(list ?? [])].map((file) => ({ file, preview: file.type.startsWith('image/') ? URL.createObjectURL(file) : undefined }));
    setFiles((f) => [...f, ...more].slice(0, MAX_FILES));
  }

  function remove(p: Picked) {
    if (p.preview) URL.revokeObjectURL(p.preview);
    setFiles((f) => f.filter((x) => x !== p));
  }

  // Files dropped anywhere on the room join the message.
  useEffect(() => {
    const room = text.current?.closest('.room');
    if (!room) return;
    const over = (e: Event) => {
      e.preventDefault();
      room.classList.add('dropping');
    };
    const leave = () => room.classList.remove('dropping');
    const drop = (e: Event) => {
      e.preventDefault();
      leave();
      add((e as DragEvent).dataTransfer?.files);
    };
    room.addEventListener('dragover', over);
    room.addEventListener('dragleave', leave);
    room.addEventListener('drop', drop);
    return () => {
      room.removeEventListener('dragover', over);
      room.removeEventListener('dragleave', leave);
      room.removeEventListener('drop', drop);
    };
  }, []);

  async function send() {
    const el = text.current;
    if (!el || busy) return;
    const body = el.value.trim();
    if (!body && files.length === 0) return;
    if (new TextEncoder().encode(body).length > maxBytes) {
      setError(`A message holds at most ${maxBytes} bytes.`);
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const uploaded: Attachment[] = [];
      for (const p of files) uploaded.push(await api<Attachment>('POST', '/attachments', undefined, { file: p.file, query: { name: p.file.name } }));
      timeline.send(body, uploaded);
      for (const p of files) if (p.preview) URL.revokeObjectURL(p.preview);
      setFiles([]);
      el.value = '';
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
      el.focus();
    }
  }

  function onKey(e: KeyboardEvent) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  }

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {files.length > 0 && (
        <ul class="picked" aria-label="Files to send">
          {files.map((p, i) => (
            <li key={`${i}:${p.file.name}`}>
              {p.preview ? <img src={p.preview} alt="" /> : <span class="muted">file</span>}
              <span class="name">
                {p.file.name} <span class="muted">{size(p.file.size)}</span>
              </span>
              <button type="button" aria-label={`Remove ${p.file.name}`} onClick={() => remove(p)}>
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
      <Alert error={error} />
      <div class="row">
        <button type="button" class="icon" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <path
              d="M16.5 6.5 8.6 14.4a2 2 0 0 0 2.8 2.8l7.9-7.9a4 4 0 0 0-5.6-5.6L5.8 11.6a6 6 0 0 0 8.5 8.5l6.4-6.4"
              fill="none"
              stroke="currentColor"
              stroke-width="1.8"
              stroke-linecap="round"
            />
          </svg>
        </button>
        <input ref={picker} type="file" multiple hidden onChange={(e) => add((e.currentTarget as HTMLInputElement).files)} />
        <textarea
          ref={text}
          rows={1}
          aria-label="Message"
          placeholder="Write a message"
          onKeyDown={onKey}
          onInput={() => timeline.typed()}
          onPaste={(e) => e.clipboardData?.files.length && add(e.clipboardData.files)}
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Uploading…' : 'Send'}
        </button>
      </div>
    </form>
  );
}
