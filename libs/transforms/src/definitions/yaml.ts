import { isNode, LineCounter, parseDocument } from "yaml";
import type { Definitions } from "./types.js";
import { DefinitionError, type DefinitionIssue, validateDefinitions } from "./validate.js";

/**
 * Parses and validates YAML definitions (same schema as the TypeScript DSL; row transforms are CEL).
 * Issues carry the field path and, where the field exists in the text, its line: `(line 12)`.
 */
export function parseDefinitionsYaml(text: string): Definitions {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new DefinitionError(
      doc.errors.map((error) => ({
        path: `(yaml line ${lines.linePos(error.pos[0]).line})`,
        message: error.message.split("\n")[0]!,
      })),
    );
  }
  try {
    return validateDefinitions(doc.toJS());
  } catch (error) {
    if (!(error instanceof DefinitionError)) throw error;
    throw new DefinitionError(error.issues.map((issue) => withLine(issue, doc, lines)));
  }
}

function withLine(issue: DefinitionIssue, doc: ReturnType<typeof parseDocument>, lines: LineCounter) {
  const keys = [...issue.path.matchAll(/([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]/g)].map((m) =>
    m[2] === undefined ? m[1]! : Number(m[2]),
  );
  // The deepest node that exists along the path (a missing field points at its parent).
  for (let depth = keys.length; depth > 0; depth--) {
    const node = doc.getIn(keys.slice(0, depth), true);
    if (isNode(node) && node.range) {
      return { ...issue, message: `${issue.message} (line ${lines.linePos(node.range[0]).line})` };
    }
  }
  return issue;
}
