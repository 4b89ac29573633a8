// What a person may say about themselves, and the rules for it. Usernames are immutable ids; the
// display name is what others see. Empty strings clear a field, as null does.

import { ValidationError } from '../errors.js';
import type { Profile } from '../store/users.js';

export const PROFILE_LIMITS = { displayName: 64, bio: 500, avatarUrl: 2048, timeZone: 64 } as const;

/** A profile change as sent: each field a string, null (clear it) or absent (keep it). */
export type ProfilePatch = { [K in keyof Profile]?: string | null };

/** Checks and normalises a change: trimmed, an http(s) avatar URL, a canonical IANA time zone. */
export function checkProfile(patch: ProfilePatch): Partial<Profile> {
  const out: Partial<Profile> = {};
  const text = (v: string | null | undefined) => (v == null ? v : v.trim() || null);
  const displayName = text(patch.displayName);
  if (displayName !== undefined) {
    if (displayName !== null && /\p{Cc}/u.test(displayName)) throw new ValidationError('displayName', 'must not contain control characters');
    out.displayName = displayName;
  }
  const bio = text(patch.bio);
  if (bio !== undefined) out.bio = bio;
  const avatarUrl = text(patch.avatarUrl);
  if (avatarUrl !== undefined) out.avatarUrl = avatarUrl === null ? null : checkAvatarUrl(avatarUrl);
  const timeZone = text(patch.timeZone);
  if (timeZone !== undefined) out.timeZone = timeZone === null ? null : canonicalTimeZone(timeZone);
  return out;
}

/** The path of an avatar uploaded to this hub (`PUT /api/v1/auth/me/avatar`). */
const UPLOADED_AVATAR = /^\/api\/v1\/attachments\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checkAvatarUrl(raw: string): string {
  // A profile sent back as it was read keeps its uploaded avatar.
  return UPLOADED_AVATAR.test(raw) ? raw : checkHttpUrl(raw, 'avatarUrl', PROFILE_LIMITS.avatarUrl);
}

/**
 * An absolute http(s) URL without credentials (no javascript:, data: or file: for another
 * person's browser or the hub to load), normalised, at most `max` characters once percent-encoded.
 */
export function checkHttpUrl(raw: string, field: string, max: number): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(field, 'must be an absolute http or https URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ValidationError(field, 'must be an http or https URL');
  if (url.username || url.password) throw new ValidationError(field, 'must not carry credentials');
  if (url.href.length > max) throw new ValidationError(field, `at most ${max} characters once percent-encoded`);
  return url.href;
}

/** The IANA name as the runtime spells it ("europe/paris" → "Europe/Paris"); refuses names it does not know. */
export function canonicalTimeZone(raw: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: raw }).resolvedOptions().timeZone;
  } catch {
    throw new ValidationError('timeZone', 'must be an IANA time zone name, like Europe/Paris or UTC');
  }
}
