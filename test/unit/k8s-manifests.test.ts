import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { PodTemplateSpec } from "kubernetes-types/core/v1.js";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

/**
 * deploy/k8s/ checked against the Kubernetes API schema offline. The schema is the `kubernetes-types`
 * package, TypeScript interfaces generated from Kubernetes' OpenAPI spec (1.30): each manifest
 * becomes an object literal typed as its kind's interface, and the TypeScript compiler checks it.
 * A field the kind does not have, at any depth, is an excess property of a fresh literal and fails,
 * as `kubectl apply --validate=strict` fails it; so do a wrong type, a missing required field and an
 * apiVersion or kind with no schema. What interfaces cannot express (enums, formats) is not checked.
 */

const K8S_DIR = resolve(import.meta.dirname, "../../deploy/k8s");

interface Manifest {
  readonly file: string;
  /** 1-based position of the document in its file. */
  readonly document: number;
  readonly value: Record<string, unknown>;
}

/** `kubernetes-types/<dir>/<version>` of an apiVersion: `v1` is core, `apps/v1` apps, `policy/v1` policy, `networking.k8s.io/v1` networking. */
function typesModule(apiVersion: string): string {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  return `kubernetes-types/${(group as string).replace(/\.k8s\.io$/, "")}/${version}`;
}

function readManifests(dir: string): { kustomization: Record<string, unknown>; manifests: Manifest[] } {
  const manifests: Manifest[] = [];
  let kustomization: Record<string, unknown> = {};
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    parseAllDocuments(readFileSync(join(dir, file), "utf8")).forEach((doc, i) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      const value = doc.toJS() as Record<string, unknown> | null;
      if (value === null) return;
      if (value.kind === "Kustomization") kustomization = value;
      else manifests.push({ file, document: i + 1, value });
    });
  }
  return { kustomization, manifests };
}

let previousProgram: ts.Program | undefined;

/** Every schema violation of `manifests`, one line each, naming the file, document, kind and name. */
function schemaErrors(manifests: readonly Manifest[]): string[] {
  const sources = new Map<string, Manifest>();
  manifests.forEach((m, i) => {
    // Inside the repository, so `kubernetes-types` resolves from its node_modules.
    sources.set(join(K8S_DIR, `__manifest_${i}.ts`), m);
  });
  const text = (m: Manifest) => {
    const { apiVersion, kind } = m.value;
    if (typeof apiVersion !== "string" || typeof kind !== "string") return "export const missing: never = 0;";
    return [
      `import type { ${kind} as Kind } from ${JSON.stringify(typesModule(apiVersion))};`,
      `export const manifest: Kind = ${JSON.stringify(m.value, null, 2)};`,
    ].join("\n");
  };
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    // No DOM, no @types: the manifests need only the Kubernetes types.
    lib: ["lib.es2022.d.ts"],
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.fileExists = (name) => sources.has(name) || ts.sys.fileExists(name);
  host.readFile = (name) => {
    const m = sources.get(name);
    return m === undefined ? readFile(name) : text(m);
  };
  host.getSourceFile = (name, language) => {
    const m = sources.get(name);
    return m === undefined ? getSourceFile(name, language) : ts.createSourceFile(name, text(m), language, true);
  };
  // The library and Kubernetes declarations are parsed once and reused by the next check.
  const program = ts.createProgram([...sources.keys()], options, host, previousProgram);
  previousProgram = program;
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const m = d.file === undefined ? undefined : sources.get(d.file.fileName);
    const where =
      m === undefined || d.file === undefined
        ? (d.file?.fileName ?? "?")
        : `${m.file} document ${m.document} (${String(m.value.kind)} ${String((m.value.metadata as { name?: string })?.name)}) at ${fieldPath(d.file, d.start ?? 0)}`;
    return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
  });
}

/** The manifest path (`spec.template.spec.containers[0].image`) of the literal at `position`. */
function fieldPath(file: ts.SourceFile, position: number): string {
  const path: string[] = [];
  const visit = (node: ts.Node): void => {
    const child = node.getChildren(file).find((c) => c.getStart(file) <= position && position < c.getEnd());
    if (child === undefined) return;
    if (ts.isPropertyAssignment(child) && ts.isStringLiteral(child.name)) path.push(`.${child.name.text}`);
    // An element's parent is the array; so is the syntax list that holds the elements, which is no element.
    if (child.kind !== ts.SyntaxKind.SyntaxList && ts.isArrayLiteralExpression(child.parent)) {
      path.push(`[${child.parent.elements.indexOf(child as ts.Expression)}]`);
    }
    visit(child);
  };
  visit(file);
  return path.join("").replace(/^\./, "") || "the top level";
}

/** A copy of `manifests` with `change` applied to the `kind` named `name`. */
// biome-ignore lint/suspicious/noExplicitAny: a test reaches into an untyped manifest to break it
type Change = (value: any) => void;
function mutated(manifests: readonly Manifest[], kind: string, name: string, change: Change): Manifest[] {
  const copy = manifests.map((m) => ({ ...m, value: structuredClone(m.value) }));
  const target = copy.find((m) => m.value.kind === kind && (m.value.metadata as { name?: string })?.name === name);
  if (target === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  change(target.value);
  return copy;
}

describe("deploy/k8s against the Kubernetes API schema (offline)", () => {
  const { kustomization, manifests } = readManifests(K8S_DIR);

  it("every manifest is valid for its apiVersion and kind", () => {
    expect(manifests.map((m) => m.value.kind)).toEqual(
      expect.arrayContaining(["Namespace", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"]),
    );
    expect(schemaErrors(manifests)).toEqual([]);
  });

  it("the kustomization lists every manifest file, and only files that exist", () => {
    const resources = kustomization.resources as string[];
    for (const file of resources) expect(existsSync(join(K8S_DIR, file)), file).toBe(true);
    expect([...new Set(manifests.map((m) => m.file))].sort()).toEqual([...resources].sort());
  });

  it("every member serves Prometheus metrics on the port the common configuration sets, and says so", () => {
    const common = manifests.find((m) => m.value.kind === "ConfigMap" && m.file === "config.yaml")?.value as {
      data: Record<string, string>;
    };
    expect(common.data.OTEL_METRICS_EXPORTER).toBe("prometheus");
    const port = Number(common.data.OTEL_EXPORTER_PROMETHEUS_PORT);
    const workloads = manifests.filter((m) => m.value.kind === "StatefulSet");
    expect(workloads).toHaveLength(4);
    for (const { value } of workloads) {
      const template = (value as { spec: { template: PodTemplateSpec } }).spec.template;
      const container = template.spec?.containers[0];
      expect(container?.ports, String(value.kind)).toContainEqual({ name: "metrics", containerPort: port });
      expect(container?.envFrom).toContainEqual({ configMapRef: { name: "quorate-common" } });
      expect(template.metadata?.annotations).toMatchObject({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(port),
      });
    }
  });

  it("fails on a misspelt field, at the top of a spec and deep in a pod template", () => {
    const top = schemaErrors(
      mutated(manifests, "StatefulSet", "quorate-raft", (s) => {
        s.spec.replcas = 3;
      }),
    );
    expect(top).toHaveLength(1);
    expect(top[0]).toMatch(
      /^raft\.yaml document 2 \(StatefulSet quorate-raft\) at spec\.replcas: .*"replcas".* does not exist/,
    );
    const deep = schemaErrors(
      mutated(manifests, "StatefulSet", "quorate-raft", (s) => {
        s.spec.template.spec.containers[0].imagePulPolicy = "IfNotPresent";
      }),
    );
    expect(deep).toHaveLength(1);
    expect(deep[0]).toContain("at spec.template.spec.containers[0].imagePulPolicy: ");
    expect(deep[0]).toContain("does not exist in type 'Container'");
  });

  it("fails on a wrong type, a missing required field and a kind with no schema", () => {
    expect(
      schemaErrors(
        mutated(manifests, "StatefulSet", "quorate-raft", (s) => {
          s.spec.replicas = "3";
        }),
      ),
    ).toEqual([expect.stringContaining("at spec.replicas: Type 'string' is not assignable to type 'number'")]);
    expect(
      schemaErrors(
        mutated(manifests, "StatefulSet", "quorate-raft", (s) => {
          delete s.spec.selector;
        }),
      ).join("\n"),
    ).toContain("selector");
    expect(
      schemaErrors(
        mutated(manifests, "PodDisruptionBudget", "quorate-raft", (p) => {
          p.kind = "PodDisruptionBudgit";
        }),
      ).join("\n"),
    ).toContain("PodDisruptionBudgit");
  });
});
