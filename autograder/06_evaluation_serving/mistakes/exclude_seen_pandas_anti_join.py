# Right, with pandas: one long table of (row, rank, id), an anti-join, then a pivot. Correct answers earn full marks.
def exclude_seen(retrieved_ids, seen_ids, k):
    retrieved_ids = np.asarray(retrieved_ids)
    n_rows, length = retrieved_ids.shape
    ranked = pd.DataFrame({
        "row": np.repeat(np.arange(n_rows), length),
        "rank": np.tile(np.arange(length), n_rows),
        "item": retrieved_ids.ravel(),
    })
    seen = pd.DataFrame(
        [(row, item) for row, items in enumerate(seen_ids) for item in items], columns=["row", "item"]
    ).assign(seen=True)
    kept = ranked.merge(seen, on=["row", "item"], how="left")
    kept = kept[kept["seen"].isna()].sort_values(["row", "rank"])
    kept["position"] = kept.groupby("row").cumcount()
    kept = kept[kept["position"] < k]
    table = kept.pivot(index="row", columns="position", values="item")
    table = table.reindex(index=range(n_rows), columns=range(k)).fillna("")
    return table.to_numpy(dtype=str)
