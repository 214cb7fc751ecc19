import { MemoryOnlineStore } from "@tessera/stores";
import { freshnessSuite } from "./freshness-suite.js";

freshnessSuite("memory store", () => new MemoryOnlineStore());
