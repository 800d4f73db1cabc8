import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import { ROOT } from './cli';

/** The Asset Bundle under databricks/, read the way the Databricks CLI reads it (root file plus includes). */
export interface Bundle {
  root: Record<string, any>;
  /** Each included resource file with its parsed content. */
  resources: { file: string; doc: Record<string, any> }[];
}

export const BUNDLE_DIR = join(ROOT, 'databricks');

export function loadBundle(dir: string = BUNDLE_DIR): Bundle {
  const root = YAML.parse(readFileSync(join(dir, 'databricks.yml'), 'utf8')) as Record<string, any>;
  const resources = (root.include as string[]).flatMap((pattern) => {
    // The bundle's includes are "<folder>/*.yml" globs.
    const folder = join(dir, dirname(pattern));
    const suffix = pattern.split('*').pop()!;
    return readdirSync(folder)
      .filter((name) => name.endsWith(suffix))
      .map((name) => ({ file: join(folder, name), doc: YAML.parse(readFileSync(join(folder, name), 'utf8')) as Record<string, any> }));
  });
  return { root, resources };
}

/** The one job of the bundle, with the file it is defined in. */
export function bundleJob(bundle: Bundle, key: string): { file: string; job: Record<string, any> } {
  for (const { file, doc } of bundle.resources) {
    const job = doc.resources?.jobs?.[key];
    if (job) return { file, job };
  }
  throw new Error(`no job ${key} in the bundle's resources`);
}

/** `${var.name}` replaced by the variable's value (an override, else its default). */
export function resolveVariables(text: string, bundle: Bundle, overrides: Record<string, string>): string {
  return text.replace(/\$\{var\.([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = overrides[name] ?? bundle.root.variables?.[name]?.default;
    if (value === undefined) throw new Error(`\${var.${name}} has no value: declare it under variables with a default, or pass it`);
    return String(value);
  });
}

/**
 * What a spark_python_task receives for one run: the job's parameters (defaults with the bundle's
 * variables resolved, overridden by the run's job_parameters, as run-now does), substituted into
 * the task's `{{job.parameters.<name>}}` references. Also the absolute path of its python_file.
 */
export function pythonTaskInvocation(bundle: Bundle, jobKey: string, taskKey: string, jobParameters: Record<string, string>, variables: Record<string, string>) {
  const { file, job } = bundleJob(bundle, jobKey);
  const declared = Object.fromEntries((job.parameters as { name: string; default: string }[]).map((p) => [p.name, resolveVariables(String(p.default), bundle, variables)]));
  for (const name of Object.keys(jobParameters)) {
    if (!(name in declared)) throw new Error(`run-now sets job parameter ${name}, which job ${jobKey} does not define`);
  }
  const values = { ...declared, ...jobParameters };
  const task = (job.tasks as Record<string, any>[]).find((t) => t.task_key === taskKey);
  if (!task?.spark_python_task) throw new Error(`job ${jobKey} has no spark_python_task ${taskKey}`);
  const args = (task.spark_python_task.parameters as string[]).map((arg) =>
    arg.replace(/\{\{job\.parameters\.([A-Za-z0-9_]+)\}\}/g, (_, name: string) => {
      if (!(name in values)) throw new Error(`task ${taskKey} refers to {{job.parameters.${name}}}, which job ${jobKey} does not define`);
      return values[name]!;
    }),
  );
  return { pythonFile: resolve(dirname(file), task.spark_python_task.python_file as string), args };
}
