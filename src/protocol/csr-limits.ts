// Size bounds of a robot's certificate signing request, shared by the hub (REST and RENEW) and the
// web console's form. No imports: the console bundles this module as is.

/** A request's DER bytes (an RSA 8192 request is about 2.2 KB). */
export const MAX_CSR_BYTES = 8_192;
/** The longest PEM form of a request the hub reads (base64 of MAX_CSR_BYTES, line breaks and the armour). */
export const MAX_CSR_PEM_CHARS = 12_288;
