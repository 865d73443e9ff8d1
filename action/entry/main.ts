// dist/main.js, the main step of action.yml: everything is run() in action/main.ts.
import { run } from '../main.ts';

await run();
