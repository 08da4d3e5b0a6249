// The memory one session call needs, from a model's declared sizes: a port of runtime/graphcheck.py's
// Budget. graphcheck.js builds it when it checks a file; Model uses it to cut long inputs into calls.
import { LIMITS } from "./schemas.js";

/** The memory a session call needs, from the model's declared sizes (graphcheck.Budget). */
export class Budget {
  constructor(rowBytes, stateBytes, weightBytes, maxCallBytes = LIMITS.DEFAULT_CALL_BYTES) {
    this.rowBytes = rowBytes;
    this.stateBytes = stateBytes;
    this.weightBytes = weightBytes;
    this.maxCallBytes = maxCallBytes;
    Object.freeze(this);
  }

  callBytes(batch, seq) {
    return batch * (seq * this.rowBytes + 2 * this.stateBytes);
  }

  /** The most rows a call of one step may have. */
  maxBatch() {
    return Math.floor(this.maxCallBytes / (this.rowBytes + 2 * this.stateBytes));
  }

  /** The longest sequence a call of `batch` rows may have (0: not even one token fits). */
  maxSeq(batch) {
    batch = Math.max(batch, 1);
    const room = this.maxCallBytes - batch * 2 * this.stateBytes;
    return Math.max(0, Math.floor(room / (batch * this.rowBytes)));
  }
}

