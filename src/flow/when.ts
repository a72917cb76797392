/**
 * The `when` language: step ids joined by `!`, `&&`, `||` and parentheses.
 * Precedence is `!` > `&&` > `||`. Pure: no I/O.
 *
 * @example
 * ```ts
 * const expr = parseWhen("(A && B) || !C");
 * formatWhen(expr); // "A && B || !C"
 * evaluateWhen(expr, new Set(["A", "B"])); // true
 * ```
 */
import type { WhenExpr } from "../domain/mod.ts";
import { LIMITS } from "./limits.ts";

/** Characters a step id may contain; the first must be a letter, digit or `_`. */
export const STEP_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const ID_CHAR = /[A-Za-z0-9_.-]/;

/** Deeper nesting than this is refused rather than risking the call stack. */
export const MAX_NESTING = LIMITS.whenNesting;

/** A syntax error; `column` is 1-based within the expression text. */
export class WhenSyntaxError extends Error {
  override name = "WhenSyntaxError";
  constructor(readonly reason: string, readonly column: number) {
    super(`${reason} at column ${column}`);
  }
}

type Token =
  | { type: "id"; text: string; column: number }
  | { type: "not" | "and" | "or" | "lparen" | "rparen"; text: string; column: number }
  | { type: "end"; text: ""; column: number };

/**
 * A character as an error names it: visible ASCII quoted; anything else by its code point too, so a
 * no-break space or a zero-width space pasted from a web page is seen for what it is.
 */
function characterName(code: number): string {
  const ch = String.fromCodePoint(code);
  if (code >= 0x21 && code <= 0x7e) return JSON.stringify(ch);
  const point = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(ch) ? `${JSON.stringify(ch)} (${point})` : point;
}

/** Splits an expression into tokens; rejects any character outside the language. */
export function tokenizeWhen(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const column = i + 1;
    if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r") {
      i++;
    } else if (ch === "(" || ch === ")") {
      tokens.push({ type: ch === "(" ? "lparen" : "rparen", text: ch, column });
      i++;
    } else if (ch === "!") {
      tokens.push({ type: "not", text: ch, column });
      i++;
    } else if ((ch === "&" || ch === "|") && text[i + 1] === ch) {
      tokens.push({ type: ch === "&" ? "and" : "or", text: ch + ch, column });
      i += 2;
    } else if (ch === "&" || ch === "|") {
      throw new WhenSyntaxError(`'${ch}' must be doubled ('${ch}${ch}')`, column);
    } else if (ID_CHAR.test(ch)) {
      let j = i;
      while (j < text.length && ID_CHAR.test(text[j])) j++;
      const id = text.slice(i, j);
      if (!STEP_ID_PATTERN.test(id)) throw new WhenSyntaxError(`invalid step id '${id}'`, column);
      tokens.push({ type: "id", text: id, column });
      i = j;
    } else {
      throw new WhenSyntaxError(`unexpected character ${characterName(text.codePointAt(i)!)}`, column);
    }
  }
  tokens.push({ type: "end", text: "", column: text.length + 1 });
  return tokens;
}

/** Parses an expression into its syntax tree, or throws {@link WhenSyntaxError}. */
export function parseWhen(text: string): WhenExpr {
  const tokens = tokenizeWhen(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const unexpected = (token: Token): never => {
    if (token.type === "end") throw new WhenSyntaxError("unexpected end of expression", token.column);
    throw new WhenSyntaxError(`unexpected '${token.text}'`, token.column);
  };

  const parseOr = (depth: number): WhenExpr => {
    let left = parseAnd(depth);
    while (peek().type === "or") {
      pos++;
      left = { kind: "or", left, right: parseAnd(depth) };
    }
    return left;
  };
  const parseAnd = (depth: number): WhenExpr => {
    let left = parseUnary(depth);
    while (peek().type === "and") {
      pos++;
      left = { kind: "and", left, right: parseUnary(depth) };
    }
    return left;
  };
  const parseUnary = (depth: number): WhenExpr => {
    const token = peek();
    if (depth > MAX_NESTING) throw new WhenSyntaxError(`nesting deeper than ${MAX_NESTING}`, token.column);
    if (token.type === "not") {
      pos++;
      return { kind: "not", operand: parseUnary(depth + 1) };
    }
    if (token.type === "lparen") {
      pos++;
      const inner = parseOr(depth + 1);
      const close = peek();
      if (close.type !== "rparen") {
        if (close.type === "end") {
          // Said at the '(' itself (the end of the text is no place to point at).
          throw new WhenSyntaxError("unclosed '('", token.column);
        }
        unexpected(close);
      }
      pos++;
      return inner;
    }
    if (token.type === "id") {
      pos++;
      return { kind: "ref", id: token.text };
    }
    return unexpected(token);
  };

  const expr = parseOr(0);
  if (peek().type !== "end") unexpected(peek());
  return expr;
}

/**
 * The tree's nodes in pre-order (a node before its operands, left before right), without recursion:
 * a `depends_on` fan-in of thousands of steps is a chain that deep.
 */
function* preOrder(expr: WhenExpr): Generator<WhenExpr> {
  const stack: WhenExpr[] = [expr];
  while (stack.length > 0) {
    const node = stack.pop()!;
    yield node;
    if (node.kind === "not") stack.push(node.operand);
    else if (node.kind !== "ref") stack.push(node.right, node.left);
  }
}

/** Step ids the expression mentions, in order of first appearance. */
export function referencedIds(expr: WhenExpr): string[] {
  const seen = new Set<string>();
  for (const node of preOrder(expr)) if (node.kind === "ref") seen.add(node.id);
  return [...seen];
}

/**
 * True when the expression holds, given the set of steps that SUCCEEDED. The caller evaluates only
 * once every referenced step is terminal, so "not in the set" means "terminal and not SUCCEEDED".
 * Iterative (post-order over an explicit stack), so any depth the loader accepts is safe.
 */
export function evaluateWhen(expr: WhenExpr, succeeded: ReadonlySet<string>): boolean {
  const values: boolean[] = [];
  const pending: { node: WhenExpr; expanded: boolean }[] = [{ node: expr, expanded: false }];
  while (pending.length > 0) {
    const frame = pending.pop()!;
    const node = frame.node;
    if (node.kind === "ref") {
      values.push(succeeded.has(node.id));
    } else if (!frame.expanded) {
      pending.push({ node, expanded: true });
      if (node.kind === "not") pending.push({ node: node.operand, expanded: false });
      else pending.push({ node: node.right, expanded: false }, { node: node.left, expanded: false });
    } else if (node.kind === "not") {
      values.push(!values.pop()!);
    } else {
      const right = values.pop()!;
      const left = values.pop()!;
      values.push(node.kind === "and" ? left && right : left || right);
    }
  }
  return values[0];
}

const PRECEDENCE = { or: 1, and: 2, not: 3, ref: 4 } as const;

/** Canonical text with only the parentheses precedence requires; parses back to the same tree. */
export function formatWhen(expr: WhenExpr): string {
  const out: string[] = [];
  // Work items: literal text, or a node to print that needs parentheses below precedence `min`.
  const stack: (string | { node: WhenExpr; min: number })[] = [{ node: expr, min: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === "string") {
      out.push(item);
      continue;
    }
    const { node, min } = item;
    const wrap = PRECEDENCE[node.kind] < min;
    if (wrap) stack.push(")");
    switch (node.kind) {
      case "ref":
        stack.push(node.id);
        break;
      case "not":
        stack.push({ node: node.operand, min: PRECEDENCE.not }, "!");
        break;
      default: {
        // Right operands are wrapped at equal precedence too, keeping the tree's left association.
        const level = PRECEDENCE[node.kind];
        stack.push({ node: node.right, min: level + 1 }, node.kind === "and" ? " && " : " || ", {
          node: node.left,
          min: level,
        });
      }
    }
    if (wrap) stack.push("(");
  }
  return out.join("");
}

/** The condition as JSON for `validate`: `and`/`or` chains flattened into one node with all operands. */
export type ConditionJson =
  | { kind: "ref"; id: string }
  | { kind: "not"; operand: ConditionJson }
  | { kind: "and" | "or"; operands: ConditionJson[] };

/** {@link ConditionJson} of a tree; its depth is the nesting the parser allows, whatever the chain lengths. */
export function conditionJson(expr: WhenExpr): ConditionJson {
  const convert = (node: WhenExpr): ConditionJson => {
    if (node.kind === "ref") return { kind: "ref", id: node.id };
    if (node.kind === "not") return { kind: "not", operand: convert(node.operand) };
    // Walk the chain of same-kind nodes without recursion; only a different kind nests.
    const operands: ConditionJson[] = [];
    const stack: WhenExpr[] = [node];
    while (stack.length > 0) {
      const current = stack.pop()!;
      if (current.kind === node.kind) {
        stack.push((current as { right: WhenExpr }).right, (current as { left: WhenExpr }).left);
      } else operands.push(convert(current));
    }
    return { kind: node.kind, operands };
  };
  return convert(expr);
}

/** `A && B && …` over the given ids: what `depends_on` means when `when` is absent. */
export function allSucceeded(ids: readonly string[]): WhenExpr | null {
  if (ids.length === 0) return null;
  return ids.slice(1).reduce<WhenExpr>(
    (left, id) => ({ kind: "and", left, right: { kind: "ref", id } }),
    { kind: "ref", id: ids[0] },
  );
}
