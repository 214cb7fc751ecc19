export * from "./binned.js";
export * from "./chisquared.js";
export * from "./ks.js";
export * from "./special.js";
export * from "./wasserstein.js";
