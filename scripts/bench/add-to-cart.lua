-- wrk: POST /api/v1/carts/{token}/lines for a prepared cart and a random variant.
-- Environment: CARTS (file of cart tokens), VARIANTS (file of variant ids), KEY (publishable
-- key), ORDER: `random` (default: any cart, so carts fill up with every variant) or `cycle`
-- (the carts in turn from a random start, so each cart gets a few lines, as a shopper's does).
local function lines(path)
  local t = {}
  for l in io.lines(path) do if #l > 0 then t[#t + 1] = l end end
  return t
end
local carts = lines(os.getenv("CARTS"))
local variants = lines(os.getenv("VARIANTS"))
local key = os.getenv("KEY")
local cycle = os.getenv("ORDER") == "cycle"
-- each wrk thread has its own state: seed it apart from the other threads
math.randomseed(os.time() + math.floor(os.clock() * 1e6) + tonumber(tostring({}):match("0x(%x+)"), 16))
local next_cart = math.random(#carts)
request = function()
  local cart
  if cycle then
    next_cart = next_cart % #carts + 1
    cart = carts[next_cart]
  else
    cart = carts[math.random(#carts)]
  end
  local variant = variants[math.random(#variants)]
  local body = '{"variant_id":"' .. variant .. '","quantity":1}'
  return wrk.format("POST", "/api/v1/carts/" .. cart .. "/lines",
    { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
