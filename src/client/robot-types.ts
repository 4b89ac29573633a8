// The public types of robots in the SDK: a watch's state and status, telemetry samples, command
// stages and outcomes, lease options, and the events a robot handle emits.

import type { ChannelInfo, LeaseEventFrame, LeaseInfo, RobotRoleName } from '../protocol/frames.js';
import type { SwitchboardError } from './errors.js';
import type { RetryHost } from './retried-request.js';

/**
 * Where a handle's watch stands:
 * - `idle`: not watched (never, or after unwatch());
 * - `pending`: watch() called, the hub has not answered yet (or the client is not connected);
 * - `watching`: live: state, telemetry and events arrive;
 * - `resuming`: the connection dropped; the robot is watched again on the next one;
 * - `ended`: the hub ended the watch (robot deleted, access revoked), a re-watch was refused, or
 *   the client closed. watch() may be called again (except on a closed client).
 */
export type RobotWatchStatus = 'idle' | 'pending' | 'watching' | 'resuming' | 'ended';

/** One telemetry sample. */
export interface TelemetrySample {
  robot: string;
  /** The channel id. */
  ch: number;
  /** The channel's name, when the channel is known. */
  channel: string | undefined;
  /** The robot's own timestamp for the sample, ms. */
  ts: number;
  data: unknown;
  /** A numbered sample of a reliable channel: its seq (stored by the hub; see RobotWatchOptions.since). */
  seq?: number;
}

/** What a watch asks for. */
export interface RobotWatchOptions {
  /**
   * Only these channels' samples (by name, at most 64), in `telemetry` events and in the state's
   * `latest`; names the robot has not advertised (yet) are allowed: their samples start once it
   * does. Omitted: every channel. Each watch() replaces the choice of the previous one.
   */
  channels?: string[];
  /**
   * By reliable channel name: first replay the samples the hub stored after this seq (its newest
   * 1,000), then the live ones. After a reconnect the client asks for what followed the last seq
   * it got of each channel by itself, so numbered samples arrive without a gap or a repeat: a
   * sample at or below the last seq seen of its channel (the hub sends one again when the robot
   * replays it) is dropped. Replay points of channels the robot no longer has are forgotten.
   */
  since?: Record<string, number>;
}

/** What is known of a watched robot: the hub's `watching` answer, kept current by live frames. */
export interface RobotState {
  id: string;
  name: string;
  /** Your role on the robot; null for an admin without one. */
  role: RobotRoleName | null;
  online: boolean;
  /** When the robot last had a live link, ms since the epoch (hub clock), or null if never. */
  lastSeen: number | null;
  /** The robot's channels: as it advertised them when it connected, then as it advertises and withdraws them (all of them, whichever you watch). */
  channels: ChannelInfo[];
  /** The newest sample of every channel that has one, by channel id. */
  latest: ReadonlyMap<number, TelemetrySample>;
  /** Who holds the control lease, or null. */
  lease: LeaseInfo | null;
}

/** Why the lease changed: the hub's reason, or `resync` when a re-watch after a reconnect found it changed. */
export type LeaseChangeReason = LeaseEventFrame['reason'] | 'resync';

/** Why a watch ended; see RobotWatchStatus `ended`. */
export type RobotEndReason = 'deleted' | 'access_revoked' | 'refused' | 'closed';

/** Stages before the outcome: `queued` (the hub has the command; its id is known), `delivered` (sent to the robot), `accepted` (the robot said so). */
export type CommandProgressStage = 'queued' | 'delivered' | 'accepted';

/**
 * A command's outcome: `completed` (detail: the robot's result), `rejected` / `failed` (detail: the
 * robot's reason), `timeout` (no outcome by the deadline), `lost` (unknown: the robot link dropped,
 * or this client's connection did; it may have run).
 */
export type CommandOutcomeStage = 'completed' | 'rejected' | 'failed' | 'timeout' | 'lost';

/** One stage of a command, as command()'s onStage and the handle's `command` event report it. */
export interface CommandStage {
  robot: string;
  /** The command's name (`estop` for the emergency stop). */
  name: string;
  /** The command id (UUID) the hub gave it; undefined until `queued`, and in a `lost` outcome when the hub never answered. */
  cmd: string | undefined;
  stage: CommandProgressStage | CommandOutcomeStage;
  /** When the stage happened, ms since the epoch: the hub's clock, or this client's for `queued` and for a `lost` it concluded itself. */
  ts: number;
  /** completed: the robot's result; rejected / failed: its reason; lost: why the outcome is unknown (`{ code, message }` when the client concluded it). */
  detail?: unknown;
}

/** What command() and estop() resolve with. */
export interface CommandOutcome extends CommandStage {
  stage: CommandOutcomeStage;
  /** stage === 'completed'. */
  ok: boolean;
  /**
   * True when the hub reported the outcome. False for a `lost` this client concluded (the connection
   * dropped, or no answer in time): the command may still have run; its outcome is in the robot's
   * audit log (GET /api/v1/robots/{id}/audit) under `cmd`, when that is known.
   */
  fromHub: boolean;
}

export interface CommandOptions {
  /** The deadline, ms from now: 100 to 600 000 (the hub's default 10 000). */
  timeoutMs?: number;
  /** Called for each stage, `queued` first, the outcome last. */
  onStage?: (s: CommandStage) => void;
}

export interface LeaseAcquireOptions {
  /** Lease lifetime, ms: 1 000 to 300 000 (the hub's default 30 000). */
  ttlMs?: number;
  /** Owner or admin: take the lease from its current holder. */
  force?: boolean;
  /**
   * Renew the lease every ttlMs/3 until release(), or until it is lost (taken over, e-stop, expired,
   * access revoked): seen in a `lease` event while watching, else as a refused renewal, reported as
   * an `error` event on the handle. A lost lease is never re-acquired by itself.
   */
  autoRenew?: boolean;
}

export interface RobotEvents {
  /** The hub answered a watch (the first, and each re-watch after a reconnect): the state now. */
  watching: (s: RobotState) => void;
  /** A live sample (samples sent while the connection was down are not replayed: the re-watch's state has the newest of each channel). */
  telemetry: (s: TelemetrySample) => void;
  online: (channels: ChannelInfo[]) => void;
  /** The robot advertised or withdrew channels while connected: its whole channel list now. */
  channels: (channels: ChannelInfo[]) => void;
  offline: (lastSeen: number | null) => void;
  lease: (lease: LeaseInfo | null, reason: LeaseChangeReason) => void;
  /** Every stage of every command and e-stop sent through this handle. */
  command: (s: CommandStage) => void;
  /** The watch ended (see RobotWatchStatus); `error` says why for `refused` and `closed`. */
  ended: (reason: RobotEndReason, error?: SwitchboardError) => void;
  /** Failures not tied to a call: an automatic lease renewal refused. */
  error: (e: SwitchboardError) => void;
}

export interface RobotsHost extends RetryHost {
  /** The user the connection authenticated as. */
  userId(): string | undefined;
  /** The client's end, once it has ended. */
  ended(): SwitchboardError | undefined;
  /** A failure for the client's `error` event. */
  report(err: SwitchboardError): void;
}
