import { registerAuthoringSuite } from "./authoring_suite.ts";

registerAuthoringSuite("builtin");
