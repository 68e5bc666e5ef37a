// The test page's script: the client and the schemas the browser tests
// need, on window, for js/e2e/browser.ts to drive with page.evaluate.
import { create } from "@bufbuild/protobuf";
import { BytesValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";

import * as wsplex from "../src/index.js";

const api = { ...wsplex, create, BytesValueSchema, StringValueSchema };
export type TestAPI = typeof api;
(globalThis as unknown as { wsplexTest: TestAPI }).wsplexTest = api;
