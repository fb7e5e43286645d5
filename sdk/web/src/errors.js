// The error every refused or failed call rejects with: an `Error` with Tencent's `code`.

/** A refused or failed call: `code` is the numeric error code, `message` says why. */
export class BeckonError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {{closeCode?: number | null, refused?: boolean}} [extra]
   */
  constructor(code, message, extra) {
    super(message);
    this.name = 'BeckonError';
    /** @type {number} */
    this.code = code;
    /**
     * The WebSocket close code when the connection ended, if any (SDK-internal).
     * @type {number | null | undefined}
     */
    this.closeCode = extra?.closeCode;
    /**
     * True when the server answered with this code (false: the SDK made it up).
     * @type {boolean}
     */
    this.refused = extra?.refused ?? false;
  }
}
