-- Trips and revenue per pickup day; {{ df_1 }} is the output of transform_taxi_data.
SELECT
    tpep_pickup_date,
    COUNT(*) AS trips,
    SUM(total_amount) AS revenue
FROM {{ df_1 }}
GROUP BY tpep_pickup_date
ORDER BY tpep_pickup_date
