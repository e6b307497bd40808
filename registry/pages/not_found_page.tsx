/**
 * The page for a model or version that does not exist, saying what to do.
 *
 * @module
 */
import { Layout } from "./_layout.tsx";
import { indexHref } from "./index_page.tsx";

/** Props of {@linkcode NotFoundPage}. */
export interface NotFoundPageProps {
  /** What was not found, e.g. `zoo/lenet6`. */
  what: string;
  /** Why, in a sentence a person can act on. */
  detail: string;
  /** Text to search the index for instead. */
  search: string;
  /** A model page to go back to, when the model exists but the version does not. */
  modelHref?: string;
}

/**
 * A 404 page: what is missing, why, and links to search or to the model.
 *
 * @param props what is missing and where to look instead
 * @returns the document
 */
export function NotFoundPage(props: NotFoundPageProps) {
  return (
    <Layout title="Not found">
      <h1>Not found: {props.what}</h1>
      <p>{props.detail}</p>
      <ul>
        {props.modelHref
          ? (
            <li>
              See the <a href={props.modelHref}>model page</a> for its versions and tags.
            </li>
          )
          : ""}
        <li>
          <a href={indexHref({ search: props.search })} id="search-instead">
            Search the registry for “{props.search}”
          </a>{" "}
          or <a href="/">browse all models</a>.
        </li>
      </ul>
    </Layout>
  );
}
