// The robot cluster of one node: this node is every robot's home, so nothing is ever sent between
// nodes. It is the single-node stand-in that lets the robot actor run the same code alone and in a
// cluster, as MemoryBus does for rooms.

import { NobodyHomeError } from '../errors.js';
import type { FollowEvent, RemoteRequest, ReplyTo, RobotCluster, RobotEvent } from './robots.js';

export class LocalRobotCluster implements RobotCluster {
  constructor(readonly nodeId: string) {}

  home(): string {
    return this.nodeId;
  }

  async claim(): Promise<boolean> {
    return true;
  }

  setOnline(): void {}

  release(): void {}

  /** Nobody follows: every watcher is on this node. */
  emit(_robotId: string, _event: Omit<RobotEvent, 'kind' | 'node'>): void {}

  follow(_robotId: string, _listener: (e: FollowEvent) => void): () => void {
    return () => {};
  }

  /** Never asked in practice (this node is always home); there is no other node to answer. */
  request<R extends RemoteRequest>(_robotId: string, _req: R, _timeoutMs: number): Promise<ReplyTo<R>> {
    return Promise.reject(new NobodyHomeError());
  }
}
