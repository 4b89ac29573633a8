// "Open in Foxglove": Foxglove's web app, connected to this node's /foxglove endpoint for the robot,
// with a socket token of this session (short-lived; the socket it opens lasts as long as the session).

import { socketToken } from '../session.js';

export const FOXGLOVE_APP = 'https://app.foxglove.dev/~/view';

/** The Foxglove link for a robot on the node that served this page. */
export function foxgloveLink(robot: string, token: string, page: Pick<Location, 'protocol' | 'host'> = location): string {
  const ws = `${page.protocol === 'https:' ? 'wss' : 'ws'}://${page.host}/foxglove?robot=${encodeURIComponent(robot)}&token=${encodeURIComponent(token)}`;
  return `${FOXGLOVE_APP}?ds=foxglove-websocket&ds.url=${encodeURIComponent(ws)}`;
}

/** The button; a failure goes to `onError` (the page's alert). */
export function OpenInFoxglove({ robot, onError }: { robot: string; onError: (message: string) => void }) {
  const open = () => {
    // Opened now, while the click still counts as the user's (a window opened after an await is
    // blocked as a pop-up), then sent to Foxglove once the token is there.
    const w = window.open('about:blank', '_blank');
    if (w) w.opener = null;
    if (!w) return onError('The browser blocked the new window: allow pop-ups for this page.');
    socketToken().then(
      (token) => {
        w.location.href = foxgloveLink(robot, token);
      },
      (e: Error) => {
        w.close();
        onError(e.message);
      },
    );
  };
  return (
    <button type="button" onClick={open} title="Watch this robot's channels in Foxglove">
      Open in Foxglove
    </button>
  );
}
