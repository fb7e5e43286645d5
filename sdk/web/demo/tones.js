// Ringtone and ringback, synthesized with WebAudio (no audio files). Browsers only let a page
// make sound after a user gesture, so `unlock()` is called from clicks; until then tones are
// silently skipped.

const RING_PERIOD_MS = 2600;
const RINGBACK_PERIOD_MS = 4000;

export class Tones {
  constructor() {
    /** @type {AudioContext | null} */
    this.ctx = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {'ring' | 'ringback' | null} */
    this.playing = null;
    this.enabled = true;
  }

  /** Creates or resumes the audio context; call from a user gesture. */
  unlock() {
    try {
      if (!this.ctx) {
        const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
        if (!Ctx) return;
        this.ctx = new Ctx();
      }
      if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
    } catch {
      this.ctx = null;
    }
  }

  /** @param {boolean} on */
  setEnabled(on) {
    this.enabled = on;
    if (!on) this.stop();
  }

  /** The incoming-call ringtone: a bright two-note chirp, repeated. */
  ring() {
    this.start('ring', RING_PERIOD_MS, () => {
      this.chirp(0, 880, 1320);
      this.chirp(0.36, 880, 1320);
    });
  }

  /** The caller's ringback: a soft dual tone, one second on, three off. */
  ringback() {
    this.start('ringback', RINGBACK_PERIOD_MS, () => {
      this.tone(0, 1.0, [440, 480], 0.05);
    });
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.playing = null;
  }

  /**
   * @private
   * @param {'ring' | 'ringback'} kind
   * @param {number} period
   * @param {() => void} pattern
   */
  start(kind, period, pattern) {
    if (this.playing === kind) return;
    this.stop();
    if (!this.enabled) return;
    this.playing = kind;
    const play = () => {
      if (!this.ctx || this.ctx.state !== 'running') return;
      try {
        pattern();
      } catch {
        // Sound is a nicety; never let it break a call.
      }
    };
    play();
    this.timer = setInterval(play, period);
  }

  /**
   * @private
   * @param {number} at seconds from now
   * @param {number} low
   * @param {number} high
   */
  chirp(at, low, high) {
    this.tone(at, 0.14, [low], 0.12);
    this.tone(at + 0.15, 0.16, [high], 0.12);
  }

  /**
   * @private
   * @param {number} at seconds from now
   * @param {number} length seconds
   * @param {number[]} freqs
   * @param {number} volume
   */
  tone(at, length, freqs, volume) {
    const ctx = /** @type {AudioContext} */ (this.ctx);
    const start = ctx.currentTime + at;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(volume, start + 0.02);
    gain.gain.setValueAtTime(volume, start + length - 0.04);
    gain.gain.linearRampToValueAtTime(0, start + length);
    gain.connect(ctx.destination);
    for (const freq of freqs) {
      const osc = ctx.createOscillator();
      osc.type = 'sine';
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(start);
      osc.stop(start + length + 0.02);
    }
  }
}
