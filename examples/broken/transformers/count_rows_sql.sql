-- df-out-of-range: this block has one upstream block, so only df_1 exists.
SELECT COUNT(*) AS row_count
FROM {{ df_3 }}
