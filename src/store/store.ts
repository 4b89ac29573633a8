// The store: the database plus one repository per table family. Layers above reach PostgreSQL (or
// the embedded PGlite) only through this object, and see its failures only as the store's own
// errors (errors.ts): every repository is wrapped so that driver errors are translated.

import type { Logger } from '../log.js';
import { ApiKeys } from './api-keys.js';
import { type BlobStore, Blobs, DbChunks } from './blobs.js';
import { Contacts } from './contacts.js';
import { type Database, openDatabase } from './db.js';
import { EmailCodes } from './email-codes.js';
import { translateDriverError, translatingErrors } from './errors.js';
import { Messages } from './messages.js';
import { appliedVersion, latestVersion, migrate } from './migrations.js';
import { Notices } from './notices.js';
import { RateLimits } from './rate-limits.js';
import { RefreshTokens } from './refresh-tokens.js';
import { RobotEnrollment } from './robot-enrollment.js';
import { RobotTelemetry } from './robot-telemetry.js';
import { Robots } from './robots.js';
import { Rooms } from './rooms.js';
import { Sessions } from './sessions.js';
import { Users } from './users.js';
import { Webhooks } from './webhooks.js';

export class Store {
  readonly users: Users;
  readonly refreshTokens: RefreshTokens;
  readonly sessions: Sessions;
  readonly emailCodes: EmailCodes;
  readonly contacts: Contacts;
  readonly rooms: Rooms;
  readonly messages: Messages;
  readonly robots: Robots;
  readonly robotTelemetry: RobotTelemetry;
  readonly robotEnrollment: RobotEnrollment;
  readonly rateLimits: RateLimits;
  readonly notices: Notices;
  readonly blobs: Blobs;
  readonly apiKeys: ApiKeys;
  readonly webhooks: Webhooks;
  /** Where blobs' bytes are kept: the database. */
  readonly chunks: BlobStore;

  constructor(readonly db: Database) {
    this.users = translatingErrors(new Users(db.sql));
    this.refreshTokens = translatingErrors(new RefreshTokens(db.sql));
    this.sessions = translatingErrors(new Sessions(db.sql));
    this.emailCodes = translatingErrors(new EmailCodes(db.sql));
    this.contacts = translatingErrors(new Contacts(db.sql));
    this.rooms = translatingErrors(new Rooms(db.sql));
    this.messages = translatingErrors(new Messages(db.sql, Math.max(1, Math.floor(db.connections / 2))));
    this.robots = translatingErrors(new Robots(db.sql));
    this.robotTelemetry = translatingErrors(new RobotTelemetry(db.sql));
    this.robotEnrollment = translatingErrors(new RobotEnrollment(db.sql));
    this.rateLimits = translatingErrors(new RateLimits(db.sql));
    this.notices = translatingErrors(new Notices(db.sql));
    this.blobs = translatingErrors(new Blobs(db.sql));
    this.apiKeys = translatingErrors(new ApiKeys(db.sql));
    this.webhooks = translatingErrors(new Webhooks(db.sql));
    this.chunks = translatingErrors(new DbChunks(db.sql));
  }

  static async open(opts: { databaseUrl: string | undefined; dataDir: string; poolSize: number; log: Logger }): Promise<Store> {
    return new Store(await openDatabase(opts));
  }

  migrate(): Promise<number[]> {
    return migrate(this.db.sql).catch((e: unknown) => Promise.reject(translateDriverError(e)));
  }

  /**
   * Ready: the database answers and every migration this build knows is applied. A schema ahead of
   * this build (a newer node migrated during a rolling upgrade) still counts: migrations only add.
   */
  async ready(): Promise<{ ok: boolean; schema: number; expected: number }> {
    const schema = await appliedVersion(this.db.sql).catch((e: unknown) => Promise.reject(translateDriverError(e)));
    return { ok: schema >= latestVersion, schema, expected: latestVersion };
  }

  private upCheck = { at: 0, up: Promise.resolve(true) };

  /** Whether the database answers within 2 s, asked at most once per 5 s however often it is called (metrics scrapes). */
  isUp(): Promise<boolean> {
    if (Date.now() - this.upCheck.at > 5_000) {
      this.upCheck = {
        at: Date.now(),
        up: Promise.race([
          this.db.sql`SELECT 1`.then(
            () => true,
            () => false,
          ),
          new Promise<boolean>((r) => setTimeout(r, 2_000, false).unref()),
        ]),
      };
    }
    return this.upCheck.up;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
