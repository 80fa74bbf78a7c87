// Option checks both sides apply: a bad option fails at once with a TypeError that names it and
// says what was expected (as p-retry does), never later as a strange behaviour.

/** A positive number; finite unless `allowInfinity`. */
export function positive(name: string, value: number, allowInfinity = false): number {
  if (!(value > 0 && (allowInfinity || Number.isFinite(value)))) {
    const what = allowInfinity ? 'a positive number' : 'a positive finite number';
    throw new TypeError(`${name} must be ${what}, got ${value}`);
  }
  return value;
}

/** A positive safe integer (a count). */
export function positiveInteger(name: string, value: number): number {
  if (!(Number.isSafeInteger(value) && value > 0)) {
    throw new TypeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** A finite number of at least `minimum` (0 by default). */
export function atLeast(name: string, value: number, minimum = 0): number {
  if (!(value >= minimum && Number.isFinite(value))) {
    throw new TypeError(`${name} must be a finite number >= ${minimum}, got ${value}`);
  }
  return value;
}

/** A TCP port number: an integer from 0 to 65535. */
export function port(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 0 && value <= 65535)) {
    throw new TypeError(`${name} must be an integer from 0 to 65535, got ${value}`);
  }
  return value;
}
