export type { Endpoint } from './args.js';
export { ExitCode, parseEndpoint, UsageError } from './args.js';
export { HELP, run } from './cli.js';
export { demo } from './demo.js';
export { makePng } from './png.js';
export type { Output, OutputOptions } from './term.js';
export { createOutput } from './term.js';
