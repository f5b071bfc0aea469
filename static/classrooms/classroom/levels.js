// Speaking indicators: the loudness of each audio track, read with WebAudio a few times a second.
// Chromium feeds a remote WebRTC track to WebAudio only while the track also plays in a media
// element, which the page's <audio> slots do.

const EVERY_MS = 120;
const SPEAKING = 0.04;

export class Levels {
  constructor({ onLevel }) {
    this.onLevel = onLevel;
    this.meters = new Map();
    this.context = null;
    this.timer = null;
  }

  watch(key, track) {
    this.unwatch(key);
    if (!track) return;
    this.context ??= new AudioContext();
    if (this.context.state === "suspended") this.context.resume();
    const source = this.context.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 512;
    source.connect(analyser);
    this.meters.set(key, { source, analyser, samples: new Float32Array(analyser.fftSize) });
    this.timer ??= setInterval(() => this.sample(), EVERY_MS);
  }

  unwatch(key) {
    const meter = this.meters.get(key);
    if (!meter) return;
    meter.source.disconnect();
    this.meters.delete(key);
    this.onLevel(key, 0, false);
  }

  sample() {
    for (const [key, meter] of this.meters) {
      meter.analyser.getFloatTimeDomainData(meter.samples);
      let sum = 0;
      for (const value of meter.samples) sum += value * value;
      const level = Math.sqrt(sum / meter.samples.length);
      this.onLevel(key, level, level > SPEAKING);
    }
  }

  close() {
    for (const key of [...this.meters.keys()]) this.unwatch(key);
    clearInterval(this.timer);
    this.timer = null;
    this.context?.close();
    this.context = null;
  }
}
