import { existsSync, readFileSync } from 'node:fs';

export interface SecretScan {
  filesScanned: number;
  bytesScanned: number;
  secretsFound: number;
  /** Where each hit was (file and which secret, never the secret itself). */
  hits: string[];
}

/** Looks for every secret value, verbatim and base64-encoded, in every file. */
export function scanForSecrets(files: string[], secrets: string[]): SecretScan {
  const needles = secrets.flatMap((secret, index) => [
    { label: `secret #${index + 1}`, text: secret },
    { label: `secret #${index + 1} (base64)`, text: Buffer.from(secret).toString('base64') },
  ]);
  const scan: SecretScan = { filesScanned: 0, bytesScanned: 0, secretsFound: 0, hits: [] };
  for (const file of new Set(files)) {
    if (!existsSync(file)) continue;
    const content = readFileSync(file, 'utf8');
    scan.filesScanned += 1;
    scan.bytesScanned += content.length;
    for (const needle of needles) {
      if (content.includes(needle.text)) {
        scan.secretsFound += 1;
        scan.hits.push(`${file}: ${needle.label}`);
      }
    }
  }
  return scan;
}
