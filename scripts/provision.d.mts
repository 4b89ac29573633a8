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
/** The path of `binary`, installing Debian's `pkg` first when missing (root only). */
export function debianBinary(binary: string, pkg: string, alternative?: string): string;
/** `file` (e.g. an nginx module), installing Debian's `pkg` first when missing (root only). */
export function debianFile(file: string, pkg: string): string;
export interface ThrowawayPostgres extends Throwaway {
  /** Stops the server, keeping its data. */
  halt(): Promise<void>;
  /** Starts it again (after halt) on the same port. */
  start(): Promise<void>;
}
export function throwawayPostgres(): Promise<ThrowawayPostgres>;
export function throwawayNats(opts?: { servers?: number; onSpawned?: (urls: string[]) => void }): Promise<ThrowawayNats>;
