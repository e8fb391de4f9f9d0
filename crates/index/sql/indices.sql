{#- Concentration, diversification, Theil, specialization, Hummels-Klenow margins and the
    quadrant of every origin, year and category (see include/index_values.sql). -#}
WITH {% include "include/units.sql" %},
{% include "include/index_values.sql" %}
SELECT * FROM index_values WHERE year IN ({{ years }})
ORDER BY year, province, category
