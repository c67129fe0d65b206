// Form checks that can be made before asking the server.

/** Why `raw` is not a usable server URL, or null when it is. */
export function serverUrlProblem(raw: string): string | null {
  const value = raw.trim();
  if (value === "") return "Enter the server address.";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "That is not a web address (e.g. http://127.0.0.1:8787).";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "The address must start with http:// or https://.";
  return null;
}

export function tokenProblem(raw: string): string | null {
  const value = raw.trim();
  if (value === "") return "Paste your account token.";
  if (/\s/.test(value)) return "The token cannot contain spaces.";
  return null;
}
