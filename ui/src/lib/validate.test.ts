import { describe, expect, it } from "vitest";
import { serverUrlProblem, tokenProblem } from "./validate";

describe("sign-in form checks", () => {
  it("accepts http and https addresses", () => {
    expect(serverUrlProblem("http://127.0.0.1:8787")).toBeNull();
    expect(serverUrlProblem(" https://credits.example.com ")).toBeNull();
  });
  it("names what is wrong with an address", () => {
    expect(serverUrlProblem("")).toMatch(/Enter/);
    expect(serverUrlProblem("localhost:8787")).toMatch(/http/);
    expect(serverUrlProblem("ftp://x")).toMatch(/http:\/\//);
  });
  it("refuses empty or spaced tokens", () => {
    expect(tokenProblem("")).toMatch(/Paste/);
    expect(tokenProblem("cb_a b")).toMatch(/spaces/);
    expect(tokenProblem("cb_abc")).toBeNull();
  });
});
