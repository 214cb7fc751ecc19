export { CliError, exitCodes } from "./errors.js";
