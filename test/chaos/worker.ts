/** A chaos worker process (see pool.ts): tasks as JSON lines on stdin, results on stdout. */
import { createInterface } from 'node:readline';
import { RESULT_MARK, runOne, type Task } from './pool.js';

for await (const line of createInterface({ input: process.stdin })) {
  const result = await runOne(JSON.parse(line) as Task);
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
}
