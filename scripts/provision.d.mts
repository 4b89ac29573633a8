// Types of scripts/provision.mjs, for the tests that start their own servers with it.

export interface Throwaway {
  url: string;
  stop(): Promise<void>;
}

export interface ThrowawayNats extends Throwaway {
  /** One URL per server; `url` is them comma-separated. */
  urls: string[];
  kill(index: number, signal?: NodeJS.Signals): void;
}

export const log: (msg: string) => void;
export function answers(url: string): Promise<boolean>;
export function natsAnswers(url: string): Promise<boolean>;
export function freePort(): Promise<number>;
export interface ThrowawayPostgres extends Throwaway {
  /** Stops the server, keeping its data. */
  halt(): Promise<void>;
  /** Starts it again (after halt) on the same port. */
  start(): Promise<void>;
}
export function throwawayPostgres(): Promise<ThrowawayPostgres>;
export function throwawayNats(opts?: { servers?: number }): Promise<ThrowawayNats>;
