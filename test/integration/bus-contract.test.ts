import { createKafka } from "../../libs/kafka/src/index.js";
import { busContract } from "../contracts/bus-contract.js";
import { kafkaBrokers, uniqueName } from "../support/index.js";

busContract("real Kafka", () => createKafka({ brokers: kafkaBrokers(), logLevel: "nothing" }), uniqueName);
