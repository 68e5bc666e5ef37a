// The test page's script: the client, its connect-es transport, connect-web's
// fetch transport to compare it with, and the schemas the browser tests
// need, on window, for js/e2e/browser.ts to drive with page.evaluate.
import { create } from "@bufbuild/protobuf";
import { BytesValueSchema, StringValueSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import * as wsplex from "../src/index.js";
import { createWsplexTransport } from "../src/connect.js";
import { CumSumRequestSchema, PingService } from "../test/gen/wsplex/ping/v1/ping_pb.js";

const api = {
  ...wsplex,
  create,
  BytesValueSchema,
  StringValueSchema,
  createClient,
  createWsplexTransport,
  createConnectTransport,
  PingService,
  CumSumRequestSchema,
};
export type TestAPI = typeof api;
(globalThis as unknown as { wsplexTest: TestAPI }).wsplexTest = api;
