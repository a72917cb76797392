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

/** Characters a step id may contain; the first must be a letter, digit or `_`. */
export const STEP_ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const ID_CHAR = /[A-Za-z0-9_.-]/;

/** Deeper nesting than this is refused rather than risking the call stack. */
export const MAX_NESTING = 64;

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
      throw new WhenSyntaxError(`unexpected character ${JSON.stringify(ch)}`, column);
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
          throw new WhenSyntaxError(`missing ')' for '(' at column ${token.column}`, close.column);
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

/** Step ids the expression mentions, in order of first appearance. */
export function referencedIds(expr: WhenExpr): string[] {
  const seen = new Set<string>();
  const visit = (node: WhenExpr): void => {
    switch (node.kind) {
      case "ref":
        seen.add(node.id);
        return;
      case "not":
        return visit(node.operand);
      default:
        visit(node.left);
        visit(node.right);
    }
  };
  visit(expr);
  return [...seen];
}

/**
 * True when the expression holds, given the set of steps that SUCCEEDED. The caller evaluates only
 * once every referenced step is terminal, so "not in the set" means "terminal and not SUCCEEDED".
 */
export function evaluateWhen(expr: WhenExpr, succeeded: ReadonlySet<string>): boolean {
  switch (expr.kind) {
    case "ref":
      return succeeded.has(expr.id);
    case "not":
      return !evaluateWhen(expr.operand, succeeded);
    case "and":
      return evaluateWhen(expr.left, succeeded) && evaluateWhen(expr.right, succeeded);
    case "or":
      return evaluateWhen(expr.left, succeeded) || evaluateWhen(expr.right, succeeded);
  }
}

const PRECEDENCE = { or: 1, and: 2, not: 3, ref: 4 } as const;

/** Canonical text with only the parentheses precedence requires; parses back to the same tree. */
export function formatWhen(expr: WhenExpr): string {
  const wrap = (child: WhenExpr, min: number): string => {
    const text = formatWhen(child);
    return PRECEDENCE[child.kind] < min ? `(${text})` : text;
  };
  switch (expr.kind) {
    case "ref":
      return expr.id;
    case "not":
      return `!${wrap(expr.operand, PRECEDENCE.not)}`;
    case "and":
      // Right operands are wrapped at equal precedence too, keeping the tree's left association.
      return `${wrap(expr.left, PRECEDENCE.and)} && ${wrap(expr.right, PRECEDENCE.and + 1)}`;
    case "or":
      return `${wrap(expr.left, PRECEDENCE.or)} || ${wrap(expr.right, PRECEDENCE.or + 1)}`;
  }
}

/** `A && B && …` over the given ids: what `depends_on` means when `when` is absent. */
export function allSucceeded(ids: readonly string[]): WhenExpr | null {
  if (ids.length === 0) return null;
  return ids.slice(1).reduce<WhenExpr>(
    (left, id) => ({ kind: "and", left, right: { kind: "ref", id } }),
    { kind: "ref", id: ids[0] },
  );
}
