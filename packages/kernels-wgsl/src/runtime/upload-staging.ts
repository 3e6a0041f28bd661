/**
 * Staging buffers for host writes that a caller repeats call after call (a forward's host input), kept mapped for
 * writing between uses.
 *
 * Dawn stages `queue.writeBuffer` in a 4 MiB upload ring; a write past what the ring has free gets a new host-visible
 * allocation of its own, on every call (dawn/native/DynamicUploader.cpp). On an H100 host (2026-12-06, session 28
 * call 1, scripts/gpu/upload-probe.ts, docs/perf-h200/2026-12-06-s28/call1/upload-probe.txt) a write then cost about
 * 1 ms per MiB past 4 MiB: 4 MiB 0.55 ms, 5 MiB 5.06, 8 MiB 7.43, 16 MiB 12.9 (in pieces under 2 MiB the same: 4.70,
 * 8.97, 14.9), while reading the same bytes back through a reused staging buffer took 0.24 ms (8 MiB, copy and map).
 * So writes of more than STAGED_WRITE_ABOVE_BYTES go through buffers this class keeps: the bytes are copied into a
 * MAP_WRITE buffer mapped since its last use, the buffer is unmapped and copied into the destination by a submitted
 * command, and mapped again for the next write (it is ready once the GPU has done the copy). Measured (H100 host,
 * session 28 call 3, the same probe; queue.writeBuffer / this path ms): 5 MiB 4.67 / 0.645, 8 MiB 7.28 / 0.941,
 * 16 MiB 13.1 / 1.86; the bench's `wallHost` (Mixtral T = 512, 8 MiB in and out) 17.4 -> 10.5 ms, 5.78 into a kept
 * output array (device 2.7). Lavapipe (this machine): 5 MiB 0.25 / 1.1 ms (its host-visible memory is plain memory,
 * and the path adds a copy): not worth a rule of its own beside forwards of seconds there.
 */

/** Dawn's upload ring: `queue.writeBuffer` stages in these many bytes Dawn reuses, when they are free. */
export const UPLOAD_RING_BYTES = 4 << 20;

/**
 * writeBufferStaged takes queue.writeBuffer up to this many bytes, its kept staging above: half the ring. Dawn's ring
 * does not wrap an allocation, so a write of more than half of it finds room only when the ring's free space starts
 * near its front: a 4 MiB write took 0.47 ms right after others of 4 MiB and 3.1 ms after other writes had moved the
 * ring on (session 28 call 3), while any write of at most half the ring fits an idle ring.
 */
export const STAGED_WRITE_ABOVE_BYTES = UPLOAD_RING_BYTES / 2;

/** Staging buffers kept (mapped or being mapped) at most; past it the smallest ready one goes. */
export const UPLOAD_STAGING_KEEP = 2;

/** Staging sizes are rounded up to this granule, so that writes of nearby sizes (token counts) share a buffer. */
const GRANULE = 1 << 20;

export class UploadStaging {
  /** Mapped for writing, free. */
  private readonly ready: GPUBuffer[] = [];
  /** Every buffer kept: ready, or being mapped again after a copy. */
  private readonly kept = new Set<GPUBuffer>();
  private closed = false;

  constructor(private readonly device: GPUDevice) {}

  /**
   * Copies `bytes` (a multiple of 4 bytes long) into `buffer` at `offset` (a multiple of 4) by a command submitted to
   * the device's queue now, through a kept staging buffer (the smallest ready one that holds them, else a new one
   * mapped at creation). The caller orders it with its other queue work (the context flushes its deferred work first).
   */
  write(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    const n = bytes.byteLength;
    const st = this.take(n);
    new Uint8Array(st.getMappedRange(0, n)).set(bytes);
    st.unmap();
    const enc = this.device.createCommandEncoder({ label: 'staged write' });
    enc.copyBufferToBuffer(st, 0, buffer, offset, n);
    this.device.queue.submit([enc.finish()]);
    this.remap(st);
  }

  /** Bytes of the staging buffers kept (host-visible memory). */
  keptBytes(): number {
    let s = 0;
    for (const b of this.kept) s += b.size;
    return s;
  }

  /** Destroys every kept buffer; later writes make and drop their own. */
  destroy(): void {
    this.closed = true;
    for (const b of this.kept) b.destroy();
    this.kept.clear();
    this.ready.length = 0;
  }

  private take(n: number): GPUBuffer {
    let best = -1;
    for (let i = 0; i < this.ready.length; i++) if (this.ready[i].size >= n && (best < 0 || this.ready[i].size < this.ready[best].size)) best = i;
    if (best >= 0) return this.ready.splice(best, 1)[0];
    const size = Math.ceil(n / GRANULE) * GRANULE;
    const st = this.device.createBuffer({ label: 'upload staging', size, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    if (this.closed) return st;
    if (this.kept.size >= UPLOAD_STAGING_KEEP && this.ready.length) {
      // the smallest ready buffer makes room (the new one is larger than every ready one)
      const i = this.ready.reduce((m, b, j) => (b.size < this.ready[m].size ? j : m), 0);
      const [old] = this.ready.splice(i, 1);
      this.kept.delete(old);
      old.destroy();
    }
    if (this.kept.size < UPLOAD_STAGING_KEEP) this.kept.add(st);
    return st;
  }

  /** After the copy out of `st` was submitted: mapped again and ready for a later write if kept, else destroyed. */
  private remap(st: GPUBuffer): void {
    if (this.closed || !this.kept.has(st)) {
      st.destroy(); // after the submitted copy: destroy waits for the queue's use of it
      return;
    }
    st.mapAsync(GPUMapMode.WRITE).then(
      () => {
        if (this.kept.has(st)) this.ready.push(st);
        else st.destroy();
      },
      () => {
        // the device went away (or the buffer was destroyed by destroy()): nothing to keep
        this.kept.delete(st);
        st.destroy();
      },
    );
  }
}
