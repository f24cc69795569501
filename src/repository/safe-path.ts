// Names that come from users (task, variant, pipeline names; repository API calls) become path
// segments only through here, so no name can leave the repository root.
import path from "node:path";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A user-given name for a message: quoted, and cut short so that no error echoes a huge input back. */
export function quoted(name: string, max = 80): string {
  const text = JSON.stringify(String(name));
  return text.length <= max ? `'${text.slice(1, -1)}'` : `'${text.slice(1, max - 1)}…' (${name.length} characters)`;
}

/** Why `name` cannot be a repository name, or null when it can. */
export function nameProblem(name: string): string | null {
  if (typeof name !== "string" || name.length === 0) return "a name must be a non-empty string";
  if (name === "." || name === ".." || name.includes(".."))
    return `${quoted(name)} contains '..'; names may not refer to parent folders`;
  if (/[\\/]/.test(name)) return `${quoted(name)} contains a path separator; names are single folder names`;
  if (!NAME_PATTERN.test(name)) {
    return `${quoted(name)} is not a valid name: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`;
  }
  return null;
}

/** Joins validated names under `root`, and double-checks that the result stays inside it. */
export function resolveInside(root: string, ...names: string[]): string {
  for (const n of names) {
    const problem = nameProblem(n);
    if (problem) throw new Error(problem);
  }
  const base = path.resolve(root);
  const full = path.resolve(base, ...names);
  if (full !== base && !full.startsWith(base + path.sep))
    throw new Error(`'${names.join("/")}' resolves outside the repository`);
  return full;
}
