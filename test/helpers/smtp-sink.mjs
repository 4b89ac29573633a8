// A real SMTP server for the tests, run as its own process (smtp-server): it accepts every mail and
// prints it as one JSON line on stdout ({"from", "to", "raw"}), after a first line
// {"listening": port}. With SMTP_SINK_USER and SMTP_SINK_PASSWORD set it requires AUTH (PLAIN or
// LOGIN) with them. No TLS: loopback only.

import { SMTPServer } from 'smtp-server';

const user = process.env.SMTP_SINK_USER;
const password = process.env.SMTP_SINK_PASSWORD;
const server = new SMTPServer({
  disabledCommands: user ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
  allowInsecureAuth: true,
  authOptional: !user,
  size: 1_048_576,
  logger: false,
  onAuth(auth, _session, cb) {
    if (auth.username === user && auth.password === password) cb(null, { user: auth.username });
    else cb(new Error('invalid credentials'));
  },
  onData(stream, session, cb) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const mail = {
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
        to: session.envelope.rcptTo.map((r) => r.address),
        raw: Buffer.concat(chunks).toString('utf8'),
      };
      process.stdout.write(`${JSON.stringify(mail)}\n`);
      cb();
    });
  },
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ listening: server.server.address().port })}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
