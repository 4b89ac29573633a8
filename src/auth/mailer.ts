// Sending mail: an interface, and its SMTP implementation on nodemailer. The hub sends only short
// plain-text notes (one-time codes); with no SMTP server configured there is no mailer, and what
// needs one says it is off.

import nodemailer, { type Transporter } from 'nodemailer';

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
  close(): void;
}

export class SmtpMailer implements Mailer {
  private readonly transport: Transporter;

  /**
   * `url`: smtp://[user:password@]host[:port] (STARTTLS when the server offers it) or smtps://
   * (TLS from the start). Connections are pooled and reused between mails.
   */
  constructor(
    url: string,
    private readonly from: string,
  ) {
    const u = new URL(url);
    this.transport = nodemailer.createTransport({
      host: u.hostname,
      port: u.port ? Number(u.port) : u.protocol === 'smtps:' ? 465 : 587,
      secure: u.protocol === 'smtps:',
      auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
      pool: true,
      maxConnections: 2,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      // nodemailer's own logger would print addresses and message bodies (the codes): off.
      logger: false,
      debug: false,
    });
  }

  async send(mail: Mail): Promise<void> {
    await this.transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }

  close(): void {
    this.transport.close();
  }
}
