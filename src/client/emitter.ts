// A small typed event emitter (browsers have no EventEmitter, and EventTarget loses payload types).
// A listener that throws never breaks the client's own bookkeeping or the other listeners: its
// exception is rethrown on a fresh microtask, where the host reports it as uncaught.

type Listener = (...args: any[]) => void;

/** Calls `fn` without letting it break the client: its exception surfaces on a fresh microtask. */
export function safely(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

export class Emitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, Set<Listener>>();

  /** Calls `fn` on every `event`. Returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: E[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof E>(event: K, fn: E[K]): void {
    this.listeners.get(event)?.delete(fn);
  }

  /** Calls `fn` on the next `event` only. Returns a function that removes it. */
  once<K extends keyof E>(event: K, fn: E[K]): () => void {
    const wrapper = ((...args: Parameters<E[K]>) => {
      off();
      fn(...args);
    }) as E[K];
    const off = this.on(event, wrapper);
    return off;
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) safely(() => fn(...args));
  }
}
