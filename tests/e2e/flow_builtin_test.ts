import { registerFlowSuite } from "./flow_suite.ts";

registerFlowSuite("builtin");
