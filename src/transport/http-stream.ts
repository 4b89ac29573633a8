// Streaming both ways on uWS, for files: a request body read as it arrives, and a response body
// written as it is produced, each with backpressure so that neither holds more than a bounded amount
// of a file. uWS hands body data to a callback and cannot be asked for it: the reader queues what
// arrives and pauses the socket once `highWater` bytes wait (resuming when half are taken). The
// writer hands each chunk to `tryEnd` and waits for `onWritable` when the socket's buffer is full.

import type { HttpResponse } from './uws.js';

/** What a request shares with its readers and writers: whether the client went away, and who to tell. */
export interface ReqState {
  aborted: boolean;
  done: boolean;
  /** Set while the body is being read or a response streamed: fails that when the client goes away. */
  onAbort?: () => void;
}

export class ClientGoneError extends Error {
  override name = 'ClientGoneError';
  constructor() {
    super('the client closed the connection');
  }
}

/** A request body, read as it arrives: its chunks, in order, each read once. */
export class BodyReader implements AsyncIterable<Uint8Array> {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  private ended = false;
  private failed: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly state: ReqState,
    private readonly highWater: number,
  ) {
    state.onAbort = () => this.stop(new ClientGoneError());
    res.onData((chunk, isLast) => {
      if (this.state.done || this.failed) return;
      // The ArrayBuffer is reused by uWS after this callback: copy it.
      if (chunk.byteLength > 0) {
        this.queue.push(Buffer.from(chunk.slice(0)));
        this.queued += chunk.byteLength;
      }
      if (isLast) this.ended = true;
      else if (this.queued >= this.highWater && !this.paused) {
        this.paused = true;
        res.cork(() => res.pause());
      }
      this.notify();
    });
  }

  /** Whether the whole body arrived (else the connection cannot carry another request). */
  get complete(): boolean {
    return this.ended && this.queue.length === 0;
  }

  private stop(e: Error): void {
    this.failed = e;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        this.queued -= next.length;
        if (this.paused && this.queued <= this.highWater / 2 && !this.state.aborted) {
          this.paused = false;
          this.res.cork(() => this.res.resume());
        }
        yield next;
        continue;
      }
      if (this.failed) throw this.failed;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

/**
 * Writes `chunks` as the body of a response of `length` bytes whose status and headers are written
 * already; each chunk is written once the socket took the previous one. Rejects with
 * ClientGoneError when the client goes away (the chunks' iterator is then closed).
 */
export async function writeBody(res: HttpResponse, state: ReqState, length: number, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  if (length === 0) {
    res.cork(() => res.end());
    return;
  }
  for await (const chunk of chunks) {
    if (state.aborted) throw new ClientGoneError();
    await writeChunk(res, state, chunk, length);
  }
}

function writeChunk(res: HttpResponse, state: ReqState, chunk: Uint8Array, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = res.getWriteOffset();
    let ok = false;
    let done = false;
    res.cork(() => {
      [ok, done] = res.tryEnd(chunk, length);
    });
    if (ok || done) {
      resolve();
      return;
    }
    state.onAbort = () => reject(new ClientGoneError());
    res.onWritable((offset) => {
      let ok2 = false;
      let done2 = false;
      res.cork(() => {
        [ok2, done2] = res.tryEnd(chunk.subarray(offset - start), length);
      });
      if (ok2 || done2) {
        state.onAbort = undefined;
        resolve();
      }
      return ok2;
    });
  });
}
