// dist/post.js, the post step of action.yml: everything is run() in action/post.ts.
import { run } from '../post.ts';

await run();
