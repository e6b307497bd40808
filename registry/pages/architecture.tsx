/**
 * The architecture section of a model page: summary facts, the table of
 * layers and the cut points, read from the architecture the registry computed
 * with `core/arch/analyze.ts` at publish time. Fields are read defensively: a
 * record stored by an older or newer analysis still renders.
 *
 * @module
 */
// hono/jsx writes a `key` prop out as an HTML attribute, and pages rendered once on the
// server never reconcile lists, so list items carry no key.
// deno-lint-ignore-file jsx-key
import type { Architecture, LayerInfo } from "../../core/arch/types.ts";
import { count, isRecord, MISSING, num, pair, shape, str } from "./_format.ts";

/** Nested models shown inline below their layer, at most this deep. */
const MAX_DEPTH = 2;

function layersOf(arch: Record<string, unknown>): Record<string, unknown>[] {
  return Array.isArray(arch.layers) ? arch.layers.filter(isRecord) : [];
}

function stringList(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : [];
}

/**
 * The id of a layer's table row, for links from the cut point list.
 *
 * @param name the layer's name
 * @returns an HTML id
 */
export function layerAnchor(name: string): string {
  return `layer-${name.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
}

function LayerRows(
  props: {
    layers: Record<string, unknown>[];
    cuts: Set<string>;
    featureCut: string | undefined;
    depth: number;
  },
) {
  const { layers, cuts, featureCut, depth } = props;
  return (
    <>
      {layers.map((layer) => {
        const l = layer as Partial<Record<keyof LayerInfo, unknown>>;
        const name = str(l.name) ?? MISSING;
        const top = depth === 0;
        const isCut = top && cuts.has(name);
        const isFeature = top && name === featureCut;
        const cls = [isFeature ? "feature" : isCut ? "cut" : "", top ? "" : "inner"]
          .filter(Boolean).join(" ");
        const inner = isRecord(l.inner) && depth < MAX_DEPTH ? layersOf(l.inner) : [];
        return (
          <>
            <tr class={cls || undefined} id={top ? layerAnchor(name) : undefined}>
              <td>
                {top ? "" : "↳ "}
                <code>{name}</code>
                {isFeature
                  ? <span class="badge cut">feature cut</span>
                  : isCut
                  ? <span class="badge cut">cut point</span>
                  : ""}
              </td>
              <td>{str(l.className) ?? MISSING}</td>
              <td>
                <code>{shape(l.outputShape)}</code>
              </td>
              <td class="num">{count(l.params)}</td>
              <td class="num">{pair(l.stride)}</td>
              <td class="num">{pair(l.jump)}</td>
              <td class="num">{pair(l.receptiveField)}</td>
            </tr>
            {inner.length > 0
              ? (
                <LayerRows
                  layers={inner}
                  cuts={cuts}
                  featureCut={featureCut}
                  depth={depth + 1}
                />
              )
              : ""}
          </>
        );
      })}
    </>
  );
}

/** Props of {@linkcode ArchitectureSection}. */
export interface ArchitectureSectionProps {
  /** The stored architecture (an {@linkcode Architecture}, read defensively). */
  architecture: Record<string, unknown>;
}

/**
 * The architecture: input and output shapes, parameters, total stride,
 * receptive field, head kind, the layer table and the cut points.
 *
 * @param props the stored architecture
 * @returns the section
 */
export function ArchitectureSection(props: ArchitectureSectionProps) {
  const a = props.architecture as Partial<Record<keyof Architecture, unknown>>;
  const layers = layersOf(props.architecture);
  const cutPoints = stringList(a.cutPoints);
  const featureCut = str(a.featureCut);
  const warnings = stringList(a.warnings);
  const facts: [string, string][] = [
    ["Input shape", shape(a.inputShape)],
    ["Output shape", shape(a.outputShape)],
    ["Parameters", count(a.totalParams)],
    ["Trainable", count(a.trainableParams)],
    ["Total stride", num(a.totalStride) === undefined ? MISSING : String(a.totalStride)],
    ["Receptive field", num(a.receptiveField) === undefined ? MISSING : `${a.receptiveField} px`],
    ["Minimum input", pair(a.minInputSize)],
    ["Head", str(a.headKind) ?? MISSING],
    ["Feature cut", featureCut ? `${featureCut} ${shape(a.featureShape)}` : MISSING],
  ];
  return (
    <section id="architecture">
      <h2>Architecture</h2>
      {layers.length === 0 && cutPoints.length === 0
        ? <p class="muted">No architecture was recorded for this version.</p>
        : (
          <>
            <dl class="arch-facts">
              {facts.map(([k, v]) => (
                <div>
                  <dt>{k}</dt>
                  <dd>{v}</dd>
                </div>
              ))}
            </dl>
            {warnings.length > 0
              ? (
                <div class="notice">
                  <strong>The analysis could not follow everything:</strong>
                  <ul>
                    {warnings.map((w) => <li>{w}</li>)}
                  </ul>
                </div>
              )
              : ""}
            <h3 id="cut-points">Cut points</h3>
            {cutPoints.length === 0
              ? <p class="muted">No layer carries everything the rest of the graph reads.</p>
              : (
                <p>
                  Layers where the network can be cut for feature extraction (CNN codes):{" "}
                  {cutPoints.map((name, i) => (
                    <>
                      {i > 0 ? ", " : ""}
                      <a href={`#${layerAnchor(name)}`}>
                        <code>{name}</code>
                      </a>
                    </>
                  ))}
                </p>
              )}
            <h3 id="layers">Layers ({layers.length})</h3>
            <div class="scroll">
              <table id="layer-table">
                <thead>
                  <tr>
                    <th>Layer</th>
                    <th>Class</th>
                    <th>Output shape</th>
                    <th class="num">Params</th>
                    <th class="num" title="Step this layer takes over its input">Stride</th>
                    <th class="num" title="Input pixels between neighbouring output units">
                      Jump
                    </th>
                    <th class="num" title="Input pixels one output unit sees">Receptive field</th>
                  </tr>
                </thead>
                <tbody>
                  <LayerRows
                    layers={layers}
                    cuts={new Set(cutPoints)}
                    featureCut={featureCut}
                    depth={0}
                  />
                </tbody>
              </table>
            </div>
          </>
        )}
    </section>
  );
}
