import { RedisOnlineStore } from "@tessera/stores";
import { services, uniqueName } from "../../../test/support/index.js";
import { freshnessSuite } from "./freshness-suite.js";

freshnessSuite(
  "real Redis",
  () =>
    new RedisOnlineStore({
      url: services().REDIS_URL,
      keyPrefix: `${uniqueName("fresh")}:`,
      timeoutMs: 2000,
    }),
);
