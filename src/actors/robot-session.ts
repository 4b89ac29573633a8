// One robot link as the hub sees it, beside the WebSocket Session: it hands the link to the robot's
// actor (asked, so the robot is welcomed only once its actor has it), then passes its telemetry and
// command statuses on as they arrive and tells the actor when the link closes. A frame the actor's
// full mailbox refuses is dropped with a warning: a dropped status makes its command time out; a
// dropped numbered sample or channel list closes the link with UNAVAILABLE (the robot replays).

import type { Logger } from '../log.js';
import { type Channel, type RobotFrame, Tag } from '../protocol/robot.js';
import type { RobotConnection } from './ports.js';
import type { RobotMsg, RobotReplies, RobotReply } from './robot.js';
import type { ActorRef } from './runtime.js';

type LinkFrame = Exclude<RobotFrame, { tag: typeof Tag.HELLO | typeof Tag.HEARTBEAT | typeof Tag.ADVERTISE | typeof Tag.WITHDRAW | typeof Tag.RENEW }>;

export class RobotSession {
  private constructor(
    /** [channelId, lastStoredSeq] for WELCOME. */
    readonly lastStored: [number, number][],
    private readonly conn: RobotConnection,
    private readonly robot: ActorRef<RobotMsg, RobotReply, RobotReplies>,
    private readonly log: Logger,
  ) {}

  /** Attaches the link to the robot's actor; rejects if the actor refuses it. */
  static async open(conn: RobotConnection, channels: Channel[], robot: ActorRef<RobotMsg, RobotReply, RobotReplies>, log: Logger): Promise<RobotSession> {
    const lastStored = await robot.ask({ type: 'attach', conn, channels });
    return new RobotSession(lastStored, conn, robot, log);
  }

  onFrame(f: LinkFrame): void {
    const conn = this.conn;
    this.tell(
      f.tag === Tag.TELEMETRY
        ? { type: 'telemetry', conn, channel: f.channel, ts: f.ts, payload: f.payload, seq: f.seq }
        : { type: 'status', conn, command: f.command, stage: f.stage, detail: f.detail },
    );
  }

  /** The robot's channels changed (ADVERTISE, WITHDRAW): the whole set now. */
  onChannels(channels: Channel[]): void {
    this.tell({ type: 'channels', conn: this.conn, channels });
  }

  onClose(): void {
    this.tell({ type: 'detach', conn: this.conn });
  }

  private tell(msg: RobotMsg): void {
    if (this.robot.tell(msg)) return;
    this.log.warn({ robot: this.conn.robotId, type: msg.type }, 'robot mailbox full; message dropped');
    // A lost numbered sample would be covered by the next one's cumulative ACK, and a lost channel
    // list leaves the actor and the link disagreeing: the link goes, so the robot replays.
    if ((msg.type === 'telemetry' && msg.seq !== undefined) || msg.type === 'channels') {
      this.conn.close('UNAVAILABLE', 'the hub is overloaded; reconnect and send again what was not acknowledged');
    }
  }
}
