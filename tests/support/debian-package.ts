/**
 * Tests that need a Debian package (mosquitto, mosquitto-clients, chromium) ask here first.
 * On a fresh machine the package may be absent: the test skips with a message naming it. CI installs the packages
 * and sets BRIDGE_TEST_REQUIRE_PACKAGES=1, so there a missing package fails the test instead of skipping silently.
 */
import { spawnSync } from "node:child_process";

/** Returns a skip message naming the package when `binary` is not on PATH, or undefined when it is. */
export function missingDebianPackage(pkg: string, binary: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" }).status === 0;
  if (found) return undefined;
  if (process.env.BRIDGE_TEST_REQUIRE_PACKAGES === "1") {
    throw new Error(`needs Debian package ${pkg} (${binary} not found), and CI requires it`);
  }
  return `needs Debian package ${pkg} (install it with: apt-get install ${pkg})`;
}
