import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/*
 * Custom search attributes: few and Keyword/Int, because the dev server's SQLite visibility caps
 * custom attributes per type. Registered on the server before any worker runs (see
 * src/temporal/searchAttributes.ts); an unregistered attribute fails the workflow task.
 */
export const CdfSource = defineSearchAttributeKey('CdfSource', SearchAttributeType.KEYWORD);
/** capturing | blocked | paused */
export const CdfState = defineSearchAttributeKey('CdfState', SearchAttributeType.KEYWORD);
/** The source's offset: the last Delta version captured (-1 before the first). */
export const CdfLastVersion = defineSearchAttributeKey('CdfLastVersion', SearchAttributeType.INT);

/** A fan-in's outcome: dispatching | dispatched | parked (dispatched, some batches parked) | nothing | failed. */
export const CdfFanInOutcome = defineSearchAttributeKey('CdfFanInOutcome', SearchAttributeType.KEYWORD);
/** Distinct ids a fan-in's run dispatches. */
export const CdfDispatchedIds = defineSearchAttributeKey('CdfDispatchedIds', SearchAttributeType.INT);
/** Batches a fan-in parked so far. */
export const CdfParkedBatches = defineSearchAttributeKey('CdfParkedBatches', SearchAttributeType.INT);

export const CDF_SEARCH_ATTRIBUTES = [CdfSource, CdfState, CdfLastVersion, CdfFanInOutcome, CdfDispatchedIds, CdfParkedBatches];
